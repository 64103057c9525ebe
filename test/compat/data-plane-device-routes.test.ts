import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E } from '../../src/errors/index.js';
import { startDeviceHttps, type DeviceHttps, type DeviceRoute } from '../../src/identity/index.js';
import { securePlatform, createDevice, type Device } from '../integration/security-helpers.js';
import type { TestPlatform } from '../helpers/platform.js';

/**
 * Extra routes on the device HTTPS plane (startDeviceHttps `routes`): a route is handed the authenticated
 * device, the body (within the limit) and `authorize(action, resourceArn)` through the device's policies;
 * errors it throws are answered in AWS's shape (reference §6.1).
 */

let platform: TestPlatform;
let https: DeviceHttps;
let dev: Device;
let A: string;

const shadowRoute: DeviceRoute = (req, _res, ctx) => {
  const m = /^\/things\/([^/]+)\/shadow$/.exec(ctx.url.pathname);
  if (!m) return false;
  const thing = decodeURIComponent(m[1]!);
  const action = `iot:${{ GET: 'Get', POST: 'Update', DELETE: 'Delete' }[req.method ?? ''] ?? ''}ThingShadow`;
  if (!ctx.authorize(action, `${A}:thing/${thing}`))
    throw E.MissingParameter({ name: `permission ${action}` });
  ctx.send(200, { thing, subject: ctx.subject.clientId, bytes: ctx.body.length });
  return true;
};

beforeAll(async () => {
  const s = await securePlatform();
  platform = s.platform;
  A = s.account;
  dev = await createDevice(s.iot, 'route-dev', {
    name: 'route-p',
    statements: [
      {
        Effect: 'Allow',
        Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow'],
        Resource: `${A}:thing/\${iot:Connection.Thing.ThingName}`,
      },
    ],
  });
  https = await startDeviceHttps({
    host: '127.0.0.1',
    port: 0,
    tls: platform.tls,
    hooks: platform.security.auth,
    broker: platform.broker,
    logger: platform.logger,
    metrics: platform.metrics,
    events: platform.events,
    maxBodyBytes: 1024,
    routes: [shadowRoute],
  });
});
afterAll(async () => {
  await https?.close();
  await platform?.stop();
});

function call(method: string, path: string, body = '') {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: https.port,
          method,
          path,
          ca: platform.tls.caPem,
          cert: dev.certPem,
          key: dev.keyPem,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    },
  );
}

describe('device HTTPS extra routes', () => {
  it('serves a route for the authenticated device, authorized by its policies', async () => {
    const r = await call('GET', '/things/route-dev/shadow');
    expect(r.status).toBe(200);
    expect(r.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(r.body)).toEqual({ thing: 'route-dev', subject: 'route-dev', bytes: 0 });
    const posted = await call('POST', '/things/route-dev/shadow', 'abc');
    expect(JSON.parse(posted.body)).toEqual({ thing: 'route-dev', subject: 'route-dev', bytes: 3 });
  });

  it('answers what a route throws in AWS error shape (policy denies another thing)', async () => {
    const r = await call('GET', '/things/other-thing/shadow');
    expect(r.status).toBe(400);
    expect(r.headers['x-amzn-errortype']).toBe('InvalidRequestException');
    expect(JSON.parse(r.body)).toEqual({ message: 'permission iot:GetThingShadow is required' });
    const denied = await call('DELETE', '/things/route-dev/shadow');
    expect(denied.status).toBe(400); // DeleteThingShadow is not in the policy
    expect(JSON.parse(denied.body)).toEqual({ message: 'permission iot:DeleteThingShadow is required' });
  });

  it('refuses a body over the limit with 413 RequestEntityTooLargeException before any route', async () => {
    const r = await call('POST', '/things/route-dev/shadow', 'x'.repeat(1025));
    expect(r.status).toBe(413);
    expect(r.headers['x-amzn-errortype']).toBe('RequestEntityTooLargeException');
    expect(JSON.parse(r.body).message).toMatch(/1024 bytes/);
  });

  it('answers a path no route serves with 405 MethodNotAllowedException', async () => {
    const r = await call('GET', '/nothing/here');
    expect(r.status).toBe(405);
    expect(r.headers['x-amzn-errortype']).toBe('MethodNotAllowedException');
  });
});
