import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E } from '../../src/errors/index.js';
import { startDeviceHttps, type DeviceHttps, type DeviceRoute } from '../../src/identity/index.js';
import { securePlatform, createDevice, type Device } from '../integration/security-helpers.js';
import type { TestPlatform } from '../helpers/platform.js';

/**
 * The device HTTPS plane (mutual TLS, reference §8.0): POST /topics/{topic} takes the data plane's query
 * parameters and headers (one parser, data-plane-publish.ts), and extra routes on it
 * (startDeviceHttps `routes`): a route is handed the authenticated
 * device (startDeviceHttps `routes`): a route is handed the authenticated
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
      { Effect: 'Allow', Action: ['iot:Publish', 'iot:RetainPublish'], Resource: `${A}:topic/dev/*` },
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

function call(method: string, path: string, body = '', headers: Record<string, string> = {}) {
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
          headers,
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

describe('device HTTPS publish', () => {
  it('takes retain, qos and the MQTT 5 properties as the data plane does', async () => {
    const r = await call(
      'POST',
      `/topics/${encodeURIComponent('dev/state')}?qos=1&retain=true&contentType=text%2Fplain&responseTopic=dev%2Freply&messageExpiry=60`,
      'on',
      {
        'x-amz-mqtt5-user-properties': Buffer.from('[{"fw":"1.2"}]').toString('base64'),
        'x-amz-mqtt5-payload-format-indicator': 'UTF8_DATA',
        'x-amz-mqtt5-correlation-data': Buffer.from('c1').toString('base64'),
      },
    );
    expect(r.status).toBe(200);
    // Answered after the durable write: the retained message is there.
    const m = platform.broker.retained('dev/state')!;
    expect(m.payload.toString()).toBe('on');
    expect(m.qos).toBe(1);
    expect(m.properties).toMatchObject({
      contentType: 'text/plain',
      responseTopic: 'dev/reply',
      messageExpiryInterval: 60,
      payloadFormatIndicator: true,
      userProperties: { fw: '1.2' },
    });
    expect(m.properties?.correlationData?.toString()).toBe('c1');
    // An empty retained payload clears it.
    expect((await call('POST', `/topics/${encodeURIComponent('dev/state')}?retain=true`)).status).toBe(200);
    expect(platform.broker.retained('dev/state')).toBeUndefined();
  });

  it('refuses bad parameters and broker-owned topics in AWS error shape', async () => {
    const q = await call('POST', '/topics/dev%2Fq?qos=2', 'x');
    expect(q.status).toBe(400);
    expect(q.headers['x-amzn-errortype']).toBe('InvalidRequestException');
    expect(JSON.parse(q.body)).toEqual({
      message:
        "1 validation error detected: Value '2' at 'qos' failed to satisfy constraint: Member must have value less than or equal to 1",
    });
    const u = await call('POST', '/topics/dev%2Fu', 'x', { 'x-amz-mqtt5-user-properties': 'not base64!' });
    expect(JSON.parse(u.body)).toEqual({
      message: 'The x-amz-mqtt5-user-properties header is not valid: not base64',
    });
    const ev = await call('POST', `/topics/${encodeURIComponent('$aws/events/presence/connected/x')}`, '{}');
    expect(ev.status).toBe(401);
    expect(ev.headers['x-amzn-errortype']).toBe('UnauthorizedException');
    const denied = await call('POST', '/topics/other%2Ftopic', 'x');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toEqual({ message: 'Not authorized to publish to other/topic' });
  });
});
