import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import {
  CreateThingCommand,
  DescribeThingCommand,
  IoTClient,
  IoTServiceException,
  ListThingsCommand,
} from '@aws-sdk/client-iot';
import { canonicalUri, verifySigV4, type SigV4Request } from '../../src/sigv4/index.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * SigV4 verification (reference §7.2) against signatures made by @smithy/signature-v4 (the JS SDK's signer)
 * and by the real SDK, and AWS's error shapes for wrong, missing, stale and unknown credentials.
 */

const KEY = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'testsecretkeytestsecretkeytestsecretkey0' };
const lookup = (id: string) =>
  id === KEY.accessKeyId ? { secretAccessKey: KEY.secretAccessKey } : undefined;

async function smithySign(
  r: {
    method: string;
    path: string;
    query?: Record<string, string>;
    body?: string;
    headers?: Record<string, string>;
  },
  opts: { service?: string; date?: Date; secret?: string } = {},
): Promise<SigV4Request> {
  const signer = new SignatureV4({
    service: opts.service ?? 'iot',
    region: 'us-east-1',
    credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: opts.secret ?? KEY.secretAccessKey },
    sha256: Sha256,
  });
  const req = new HttpRequest({
    method: r.method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 18080,
    path: r.path,
    query: r.query ?? {},
    headers: { host: '127.0.0.1:18080', ...(r.headers ?? {}) },
    body: r.body,
  });
  const signed = await signer.sign(req, { signingDate: opts.date ?? new Date() });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = v;
  // The wire form of path and query, encoded as the SDK's HTTP handler sends them (reference §2).
  const wirePath = r.path;
  const query = Object.entries(r.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return { method: r.method, path: wirePath, query, headers, body: Buffer.from(r.body ?? '') };
}

describe('verifySigV4 against @smithy/signature-v4', () => {
  test('reference §7.2 canonical URI: double encoding, empty segments dropped', () => {
    expect(canonicalUri('/things/my%20thing%2F1')).toBe('/things/my%2520thing%252F1');
    expect(canonicalUri('//things/t1')).toBe('/things/t1');
    expect(canonicalUri('/things/t1/jobs/$next')).toBe('/things/t1/jobs/%24next');
    expect(canonicalUri('/')).toBe('/');
  });

  test.each([
    ['GET', '/things', { maxResults: '2', attributeValue: 'a b+c', nextToken: 'abc=' }, undefined],
    ['POST', '/things/my%20thing%2F1', {}, '{"attributePayload":{"attributes":{"color":"red"}}}'],
    ['PUT', '/topics/%24aws%2Fthings%2Ft1%2Fshadow%2Fupdate', { qos: '1' }, 'payload'],
    ['DELETE', '/things/t1', { expectedVersion: '4' }, undefined],
  ])('%s %s verifies', async (method, path, query, body) => {
    const req = await smithySign({
      method,
      path,
      query,
      body,
      headers: body ? { 'content-type': 'application/json' } : {},
    });
    const v = await verifySigV4(req, lookup);
    expect(v).toMatchObject({ accessKeyId: KEY.accessKeyId, service: 'iot', region: 'us-east-1' });
  });

  test('the signing name selects the service (iotdata, iot-jobs-data)', async () => {
    for (const service of ['iotdata', 'iot-jobs-data']) {
      const v = await verifySigV4(
        await smithySign({ method: 'GET', path: '/things/t1/jobs' }, { service }),
        lookup,
      );
      expect(v.service).toBe(service);
    }
  });

  test('a wrong secret, a tampered path, query or body fail with InvalidSignatureException', async () => {
    const bad = await smithySign({ method: 'GET', path: '/things' }, { secret: 'wrong' });
    await expect(verifySigV4(bad, lookup)).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    const ok = await smithySign({ method: 'POST', path: '/things/t1', body: '{"a":1}', query: { q: '1' } });
    await expect(verifySigV4({ ...ok, path: '/things/t2' }, lookup)).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/does not match the signature you provided/),
    });
    await expect(verifySigV4({ ...ok, query: 'q=2' }, lookup)).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
    await expect(verifySigV4({ ...ok, body: Buffer.from('{"a":2}') }, lookup)).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/x-amz-content-sha256/),
    });
    // boto3 sends no x-amz-content-sha256: the server hashes the body itself (reference §7.1).
    const { 'x-amz-content-sha256': _drop, ...noHash } = ok.headers as Record<string, string>;
    await expect(verifySigV4({ ...ok, headers: noHash }, lookup)).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
  });

  test('stale (> 5 min) and future dates are refused; within 5 min accepted', async () => {
    const now = Date.now();
    const old = await smithySign({ method: 'GET', path: '/things' }, { date: new Date(now - 6 * 60_000) });
    await expect(verifySigV4(old, lookup, now)).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/^Signature expired: \d{8}T\d{6}Z is now earlier than/),
    });
    const future = await smithySign({ method: 'GET', path: '/things' }, { date: new Date(now + 6 * 60_000) });
    await expect(verifySigV4(future, lookup, now)).rejects.toMatchObject({
      message: expect.stringMatching(/Signature not yet current/),
    });
    const skewed = await smithySign({ method: 'GET', path: '/things' }, { date: new Date(now - 4 * 60_000) });
    await expect(verifySigV4(skewed, lookup, now)).resolves.toBeTruthy();
  });

  test('unknown key is UnrecognizedClientException; no Authorization is MissingAuthenticationTokenException', async () => {
    const req = await smithySign({ method: 'GET', path: '/things' });
    await expect(verifySigV4(req, () => undefined)).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    await expect(
      verifySigV4({ method: 'GET', path: '/things', query: '', headers: {}, body: Buffer.alloc(0) }, lookup),
    ).rejects.toMatchObject({ name: 'MissingAuthenticationTokenException' });
  });

  test('presigned query signatures (MQTT over WebSocket, reference §7.3) verify', async () => {
    const signer = new SignatureV4({
      service: 'iotdevicegateway',
      region: 'us-east-1',
      credentials: KEY,
      sha256: Sha256,
    });
    const req = new HttpRequest({
      method: 'GET',
      protocol: 'wss:',
      hostname: '127.0.0.1',
      port: 18080,
      path: '/mqtt',
      headers: { host: '127.0.0.1:18080' },
    });
    const p = await signer.presign(req, { expiresIn: 300 });
    const query = Object.entries(p.query ?? {})
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    const v = await verifySigV4(
      { method: 'GET', path: '/mqtt', query, headers: { host: '127.0.0.1:18080' }, body: Buffer.alloc(0) },
      lookup,
    );
    expect(v.service).toBe('iotdevicegateway');
  });
});

describe('API authentication through the real SDK', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApi('sqlite');
  });
  afterAll(async () => h?.close());

  const errorOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e as IoTServiceException,
    );

  test('a name with space and slash round-trips through signing and routing (reference §7.2 capture)', async () => {
    // Thing names cannot hold ' ' or '/', so the server must still verify then reject with the model error.
    const err = await errorOf(h.client().send(new CreateThingCommand({ thingName: 'my thing/1' })));
    expect(err?.name).toBe('InvalidRequestException');
    expect(err?.message).toMatch(/Value 'my thing\/1' at 'thingName'/);
  });

  test('a wrong secret is 403 InvalidSignatureException', async () => {
    const err = await errorOf(
      h
        .client({ accessKeyId: h.admin.accessKeyId, secretAccessKey: 'x'.repeat(40) })
        .send(new ListThingsCommand({})),
    );
    expect(err).toBeInstanceOf(IoTServiceException);
    expect(err?.name).toBe('InvalidSignatureException');
    expect(err?.$metadata.httpStatusCode).toBe(403);
  });

  test('an unknown access key is 403 UnrecognizedClientException', async () => {
    const err = await errorOf(
      h.client({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'x' }).send(new ListThingsCommand({})),
    );
    expect(err?.name).toBe('UnrecognizedClientException');
    expect(err?.message).toBe('The security token included in the request is invalid.');
  });

  test('a stale date (client clock 10 min behind) is InvalidSignatureException "Signature expired"', async () => {
    const client = new IoTClient({
      endpoint: h.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: h.admin,
      systemClockOffset: -10 * 60_000,
    });
    const err = await errorOf(client.send(new ListThingsCommand({})));
    expect(err?.name).toBe('InvalidSignatureException');
    expect(err?.message).toMatch(/Signature expired/);
  });

  test('a request with no signature is 403 MissingAuthenticationTokenException; /healthz stays open', async () => {
    const res = await fetch(`${h.endpoint}/things`);
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ message: 'Missing Authentication Token' });
    expect((await fetch(`${h.endpoint}/healthz`)).status).toBe(200);
  });

  test('a read-only key may describe and list but not create (AccessDeniedException)', async () => {
    const ro = await h.credentials.create('viewer', 'read-only');
    const client = h.client(ro);
    await h.client().send(new CreateThingCommand({ thingName: 'ro-visible' }));
    expect((await client.send(new DescribeThingCommand({ thingName: 'ro-visible' }))).thingName).toBe(
      'ro-visible',
    );
    const err = await errorOf(client.send(new CreateThingCommand({ thingName: 'ro-new' })));
    expect(err?.name).toBe('AccessDeniedException');
    expect(err?.message).toMatch(/not authorized to perform: iot:CreateThing/);
  });

  test('a deleted key stops working', async () => {
    const k = await h.credentials.create('temp', 'admin');
    await h.client(k).send(new ListThingsCommand({}));
    await h.credentials.delete('temp');
    const err = await errorOf(h.client(k).send(new ListThingsCommand({})));
    expect(err?.name).toBe('UnrecognizedClientException');
  });

  test('a signed request for an operation nobody serves is 404 UnknownOperationException', async () => {
    const { signedFetch } = await import('../../src/api/index.js');
    const err = await signedFetch(
      { endpoint: h.endpoint, region: 'us-east-1', ...h.admin },
      'GET',
      '/no-such-operation',
    ).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'UnknownOperationException', status: 404 });
  });

  test('a trailing-slash endpoint (JS sends //things) still verifies [reference §1]', async () => {
    const client = new IoTClient({
      endpoint: `${h.endpoint}/`,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: h.admin,
    });
    const out = await client.send(new ListThingsCommand({ maxResults: 1 }));
    expect(out.$metadata.httpStatusCode).toBe(200);
  });
});
