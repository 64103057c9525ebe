import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uriEncode } from '../../src/sigv4/index.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { publishReason, subscribeCodes } from './security-helpers.js';

/**
 * Credentials other than client certificates: SigV4 presigned URLs for MQTT over WebSocket (reference
 * §7.3), access keys as MQTT user name / password on the plain listener, and dev-mode anonymous loopback
 * clients authorized by the policies attached to `anonymous`.
 */

const connect = (url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> =>
  mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...options });

async function refusal(p: Promise<MqttClient>): Promise<number | undefined> {
  try {
    const c = await p;
    await c.endAsync(true);
  } catch (err) {
    return (err as { code?: number }).code;
  }
  throw new Error('connection accepted but should have been refused');
}

async function presignedUrl(
  platform: TestPlatform,
  key: { accessKeyId: string; secretAccessKey: string },
  sessionToken?: string,
  presign: { signingDate?: Date; expiresIn?: number } = {},
): Promise<string> {
  const port = platform.endpoints.httpPort;
  const signer = new SignatureV4({
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    region: platform.config.region,
    service: 'iotdevicegateway',
    sha256: Sha256,
  });
  const req = new HttpRequest({
    method: 'GET',
    protocol: 'ws:',
    hostname: '127.0.0.1',
    port,
    path: '/mqtt',
    headers: { host: `127.0.0.1:${port}` },
  });
  const signed = await signer.presign(req, { expiresIn: 300, ...presign });
  let query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`)
    .join('&');
  // The Device SDK appends the session token after signing; it is not part of the signature (§7.3).
  if (sessionToken) query += `&X-Amz-Security-Token=${uriEncode(sessionToken)}`;
  return `ws://127.0.0.1:${port}/mqtt?${query}`;
}

describe('credentials without certificates (anonymous off)', () => {
  let platform: TestPlatform;
  let admin: { accessKeyId: string; secretAccessKey: string };
  let reader: { accessKeyId: string; secretAccessKey: string };
  beforeAll(async () => {
    platform = await startTestPlatform({ mqtt: { allowAnonymous: false } });
    admin = await platform.credentials.create('ws-admin', 'admin');
    reader = await platform.credentials.create('ws-reader', 'read-only');
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('MQTT over WebSocket with a SigV4 presigned URL (service iotdevicegateway)', async () => {
    const c = await connect(await presignedUrl(platform, admin, 'token-not-signed'));
    expect(await publishReason(c, 'any/topic')).toBe(0);
    await c.endAsync();
  });

  it('refuses a tampered or unknown-key presigned URL, and a bare WebSocket', async () => {
    const url = await presignedUrl(platform, admin);
    const tampered = url.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`,
    );
    expect(await refusal(connect(tampered))).toBe(0x86);
    const unknown = await presignedUrl(platform, {
      accessKeyId: 'AKIANOTAKEY000000000',
      secretAccessKey: 'x'.repeat(40),
    });
    expect(await refusal(connect(unknown))).toBe(0x86);
    expect(await refusal(connect(platform.endpoints.ws))).toBe(0x87);
    // within the clock-skew window but past its X-Amz-Expires
    const expired = await presignedUrl(platform, admin, undefined, {
      signingDate: new Date(Date.now() - 120_000),
      expiresIn: 60,
    });
    expect(await refusal(connect(expired))).toBe(0x86);
  });

  it('access keys as user name / password on the plain listener; read-only keys may not publish', async () => {
    const url = platform.endpoints.mqtt!;
    const c = await connect(url, { username: admin.accessKeyId, password: admin.secretAccessKey });
    expect(await publishReason(c, 'a/b')).toBe(0);
    await c.endAsync();
    // Device SDKs append metrics to the user name (§7.4)
    const sdk = await connect(url, {
      username: `${admin.accessKeyId}?SDK=PythonV2&Version=1.0`,
      password: admin.secretAccessKey,
    });
    await sdk.endAsync();
    expect(await refusal(connect(url, { username: admin.accessKeyId, password: 'wrong' }))).toBe(0x86);
    expect(await refusal(connect(url))).toBe(0x87);
    const r = await connect(url, { username: reader.accessKeyId, password: reader.secretAccessKey });
    expect(await subscribeCodes(r, ['a/#'])).toEqual([0]);
    expect(await publishReason(r, 'a/b')).toBe(0x87);
    await r.endAsync();
  });
});

describe('dev mode: anonymous loopback clients', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ mqtt: { allowAnonymous: true } });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('allow everything until a policy is attached to "anonymous", then obey it live', async () => {
    const c = await connect(platform.endpoints.mqtt!, { clientId: 'dev-1' });
    expect(platform.security.auth.anonymousAllowsAll()).toBe(true);
    expect(await publishReason(c, 'anything/at/all')).toBe(0);
    const A = `arn:aws:iot:${platform.config.region}:${platform.config.accountId}`;
    await platform.security.policies.createPolicy(
      'dev',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: `${A}:client/dev-*` },
          { Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/dev/*` },
        ],
      }),
    );
    await platform.security.policies.attachPolicy('dev', 'anonymous');
    expect(platform.security.auth.anonymousAllowsAll()).toBe(false);
    expect(await publishReason(c, 'dev/x')).toBe(0);
    expect(await publishReason(c, 'anything/at/all')).toBe(0x87);
    await c.endAsync();
    expect(await refusal(connect(platform.endpoints.mqtt!, { clientId: 'other' }))).toBe(0x87);
  });
});
