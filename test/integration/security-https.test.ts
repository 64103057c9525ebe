import { request, Agent } from 'node:https';
import { UpdateCertificateCommand, type IoTClient } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { createDevice, type Device } from './security-helpers.js';
import { IoTClient as Client } from '@aws-sdk/client-iot';

/**
 * The device HTTPS data plane (reference §8.0: POST /topics/{topic}?qos=, X.509 mutual TLS): the same
 * certificate checks and iot:Publish policy as MQTT, answered with AWS-style errors.
 */

let platform: TestPlatform;
let iot: IoTClient;
let A: string;
const routed: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform({
    mqtt: { allowAnonymous: false },
    deviceHttps: { port: 0, host: '127.0.0.1' },
  });
  const key = await platform.credentials.create('https-test', 'admin');
  iot = new Client({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
  A = `arn:aws:iot:${platform.config.region}:${platform.config.accountId}`;
  platform.broker.subscribeInternal('#', (m) => routed.push(m.topic));
});
afterAll(async () => {
  await platform?.stop();
});

function post(
  creds: { certPem: string; keyPem: string } | null,
  topic: string,
  agent?: Agent,
): Promise<{ status: number; errorType?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: platform.endpoints.deviceHttpsPort!,
        method: 'POST',
        path: `/topics/${encodeURIComponent(topic)}?qos=1`,
        ca: platform.tls.caPem,
        ...(creds ? { cert: creds.certPem, key: creds.keyPem } : {}),
        agent: agent ?? false,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            errorType: res.headers['x-amzn-errortype'] as string | undefined,
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end('{"temperature":21}');
  });
}

describe('device HTTPS data plane', () => {
  let dev: Device;
  beforeAll(async () => {
    dev = await createDevice(iot, 'http-dev', {
      name: 'http-p',
      statements: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/telemetry/*` }],
    });
  });

  it('publishes with an authorized client certificate', async () => {
    const r = await post(dev, 'telemetry/http-dev');
    expect(r.status, r.body).toBe(200);
    await waitFor(() => routed.includes('telemetry/http-dev'), 3000, 'the HTTPS publish to be routed');
  });

  it('refuses topics the policy does not allow (403 ForbiddenException)', async () => {
    const r = await post(dev, 'other/topic');
    expect(r).toMatchObject({ status: 403, errorType: 'ForbiddenException' });
    expect(routed).not.toContain('other/topic');
  });

  it('refuses requests without a client certificate (401)', async () => {
    const r = await post(null, 'telemetry/x');
    expect(r).toMatchObject({ status: 401, errorType: 'UnauthorizedException' });
  });

  it('a revoked certificate loses its keep-alive socket and is refused after', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await post(dev, 'telemetry/1', agent)).status).toBe(200);
    await iot.send(new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }));
    const r = await post(dev, 'telemetry/2', agent).catch(() => post(dev, 'telemetry/2', agent));
    expect(r).toMatchObject({ status: 401, errorType: 'UnauthorizedException' });
    expect(r.body).toMatch(/revoked/);
    agent.destroy();
  });
});
