import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encode as cborEncode } from 'cborg';
import { describe, expect, it } from 'vitest';
import { isThingsteadError } from '../errors/index.js';
import { openDatabase } from '../store/index.js';
import { claimPolicyDocument } from './certificates.js';
import { openFlowsStore } from './flows-store.js';
import { callHook, hookUrlProblem } from './hook.js';
import { decodeRequest, encodeAnswer, parseProvisioningTopic } from './mqtt.js';
import { refusal } from './pipeline.js';
import { createOwnershipTokens } from './tokens.js';
import { E } from '../errors/index.js';

describe('provisioning MQTT topics (reference §8.4)', () => {
  it('names the operation and the format, and nothing else', () => {
    expect(parseProvisioningTopic('$aws/certificates/create/json')).toEqual({ op: 'create', format: 'json' });
    expect(parseProvisioningTopic('$aws/certificates/create-from-csr/cbor')).toEqual({
      op: 'create-from-csr',
      format: 'cbor',
    });
    expect(parseProvisioningTopic('$aws/provisioning-templates/line-1/provision/json')).toEqual({
      op: 'provision',
      format: 'json',
      templateName: 'line-1',
    });
    for (const t of [
      '$aws/certificates/create/xml',
      '$aws/certificates/create/json/accepted',
      '$aws/certificates/other/json',
      '$aws/provisioning-templates//provision/json',
      '$aws/provisioning-templates/x/provision/json/rejected',
    ])
      expect(parseProvisioningTopic(t), t).toBeNull();
  });

  it('decodes JSON and CBOR requests, refuses what is not a map, and encodes answers in the same format', () => {
    expect(decodeRequest(Buffer.alloc(0), 'json')).toEqual({});
    expect(decodeRequest(Buffer.from('{"a":"b"}'), 'json')).toEqual({ a: 'b' });
    expect(decodeRequest(Buffer.from(cborEncode({ a: 'b' })), 'cbor')).toEqual({ a: 'b' });
    for (const [payload, format] of [
      [Buffer.from('[1]'), 'json'],
      [Buffer.from('{'), 'json'],
      [Buffer.from(cborEncode([1])), 'cbor'],
      [Buffer.from([0xff, 0x00]), 'cbor'],
    ] as const) {
      let err: unknown;
      try {
        decodeRequest(payload, format);
      } catch (e) {
        err = e;
      }
      expect(isThingsteadError(err) && err.kind).toBe('ProvisioningPayload');
    }
    expect(encodeAnswer({ x: 1 }, 'json').toString()).toBe('{"x":1}');
    expect(encodeAnswer({ x: 1 }, 'cbor')).toEqual(Buffer.from(cborEncode({ x: 1 })));
  });

  it('maps refusals to AWS rejected fields', () => {
    expect(refusal('token_used', E.OwnershipTokenUsed()).mqtt).toMatchObject({
      statusCode: 400,
      errorCode: 'InvalidCertificateOwnershipToken',
    });
    expect(refusal('hook_timeout', E.ProvisioningHookRefused({ detail: 'x' })).mqtt).toMatchObject({
      statusCode: 403,
      errorCode: 'AccessDenied',
    });
    expect(refusal('throttled', E.ProvisioningThrottled({ limit: 1 })).mqtt.statusCode).toBe(429);
    expect(
      refusal('template_not_found', E.ProvisioningTemplateMissing({ templateName: 't' })).mqtt,
    ).toMatchObject({
      statusCode: 404,
      errorCode: 'ResourceNotFound',
    });
  });
});

describe('the pre-provisioning hook', () => {
  it('takes https anywhere and plain http only on loopback unless allowed', () => {
    expect(hookUrlProblem('https://factory.example/allow', false)).toBeNull();
    expect(hookUrlProblem('http://127.0.0.1:9/allow', false)).toBeNull();
    expect(hookUrlProblem('http://[::1]:9/allow', false)).toBeNull();
    expect(hookUrlProblem('http://localhost/allow', false)).toBeNull();
    expect(hookUrlProblem('http://10.0.0.5/allow', false)).toContain('allowPlainHttpHooks');
    expect(hookUrlProblem('http://10.0.0.5/allow', true)).toBeNull();
    expect(hookUrlProblem('arn:aws:lambda:us-east-1:1:function:f', false)).toContain('Lambda ARN');
    expect(hookUrlProblem('ftp://x/y', false)).toContain('https://');
    expect(hookUrlProblem('not a url', false)).toContain('not a URL');
  });

  it('reads every kind of answer as allow or a named refusal', async () => {
    const answers: Array<[number, string]> = [
      [200, '{"allowProvisioning":true,"parameterOverrides":{"a":"b"}}'],
      [200, '{"allowProvisioning":"true"}'],
      [200, '{"allowProvisioning":false}'],
      [500, '{}'],
      [200, 'nope'],
      [200, '{"allowProvisioning":true,"parameterOverrides":{"a":1}}'],
    ];
    let i = 0;
    const server = createServer((_req, res) => {
      const [status, body] = answers[i++]!;
      res.statusCode = status;
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const call = () =>
      callHook(url, { templateArn: 'arn', parameters: {} }, { timeoutMs: 2000, allowPlainHttp: false });
    try {
      expect(await call()).toMatchObject({ allow: true, parameterOverrides: { a: 'b' } });
      expect(await call()).toMatchObject({ allow: true, parameterOverrides: {} });
      expect(await call()).toMatchObject({ allow: false, reason: 'hook_denied' });
      expect(await call()).toMatchObject({ allow: false, reason: 'hook_status', status: 500 });
      expect(await call()).toMatchObject({ allow: false, reason: 'hook_answer' });
      expect(await call()).toMatchObject({ allow: false, reason: 'hook_answer' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(
      await callHook(
        'http://127.0.0.1:1/',
        { templateArn: 'a', parameters: {} },
        { timeoutMs: 500, allowPlainHttp: false },
      ),
    ).toMatchObject({
      allow: false,
      reason: 'hook_unreachable',
    });
  });
});

describe('ownership tokens', () => {
  it('are unguessable, hashed at rest, single use, released on refusal, and expire', async () => {
    const db = await openDatabase({ dataDir: '.', databaseUrl: null, file: ':memory:' });
    const store = await openFlowsStore(db);
    let now = 1_000_000;
    const tokens = createOwnershipTokens({ store, ttlMs: () => 1000, leaseMs: 100, now: () => now });
    const token = await tokens.issue({ certificateId: 'c'.repeat(64) });
    expect(token.length).toBeGreaterThanOrEqual(64);
    const rows = await db.query<{ token_hash: string }>('SELECT token_hash FROM provisioning_tokens');
    expect(rows[0]!.token_hash).not.toContain(token);
    expect(await tokens.take(token)).toMatchObject({ ok: true, row: { certificateId: 'c'.repeat(64) } });
    expect(await tokens.take(token)).toEqual({ ok: false, reason: 'busy' });
    await tokens.release(token);
    expect((await tokens.take(token)).ok).toBe(true);
    await tokens.spend(token);
    expect(await tokens.take(token)).toEqual({ ok: false, reason: 'used' });
    expect(await tokens.take('not-a-token')).toEqual({ ok: false, reason: 'unknown' });
    const other = await tokens.issue({ certificateId: 'd'.repeat(64) });
    now += 1001;
    expect(await tokens.take(other)).toEqual({ ok: false, reason: 'expired' });
    expect((await store.expiredTokens(now, 10)).map((t) => t.certificateId)).toEqual(['d'.repeat(64)]);
    await db.close();
  });
});

describe('the claim policy', () => {
  it('allows only the certificate topics and its own template', () => {
    const doc = JSON.parse(claimPolicyDocument('us-east-1', '123456789012', 'line-1'));
    const resources = doc.Statement.flatMap((s: { Resource: string | string[] }) => s.Resource);
    expect(resources).toContain(
      'arn:aws:iot:us-east-1:123456789012:topic/$aws/provisioning-templates/line-1/provision/*',
    );
    expect(
      resources.filter((r: string) => r.includes('provisioning-templates/') && !r.includes('/line-1/')),
    ).toEqual([]);
  });
});
