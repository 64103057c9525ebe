import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import {
  CreateThingCommand,
  CreateTopicRuleCommand,
  IoTClient,
  ListThingsCommand,
  UpdateThingCommand,
} from '@aws-sdk/client-iot';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsApiError, signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { signRequest, uriEncode } from '../../src/sigv4/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Issue 8, "No device can take the platform down": JSON nested far deeper than `limits.maxJsonDepth`,
 * rule SQL nested far deeper than the parser's limit, oversized API bodies and SigV4 signatures scoped to
 * another region. The platform must answer each with a client error in AWS's shape (reference §6) or, on
 * the data path, count a rule error and call the errorAction, while the message is still delivered and
 * well-behaved clients keep being served.
 */

let p: TestPlatform;
let iot: IoTClient;
let creds: { accessKeyId: string; secretAccessKey: string };
const region = 'us-east-1';
const api = (method: string, path: string, request: Parameters<typeof signedFetch>[3] = {}) =>
  signedFetch({ endpoint: p.endpoints.http, region, ...creds }, method, path, request);

const deepArray = (d: number) => '['.repeat(d) + ']'.repeat(d);
const deepObject = (d: number, leaf = '1') => '{"a":'.repeat(d) + leaf + '}'.repeat(d);

/** A SigV4-signed request with a body given as text (the SDKs' JSON.stringify cannot build these). */
async function rawSigned(
  method: string,
  path: string,
  body: string,
): Promise<{ status: number; name: string; json: any }> {
  const url = new URL(p.endpoints.http);
  const bytes = Buffer.from(body);
  const signed = signRequest({
    method,
    host: url.host,
    path,
    query: '',
    body: bytes,
    headers: { 'content-type': 'application/json' },
    region,
    service: 'iot',
    ...creds,
  });
  const { host: _host, ...headers } = signed;
  const res = await fetch(`${url.origin}${path}`, { method, headers, body: bytes });
  const text = await res.text();
  return { status: res.status, name: res.headers.get('x-amzn-errortype') ?? '', json: JSON.parse(text) };
}

/** The SDK with its body replaced (after serialization, before signing) by the given text. */
async function sdkWithBody<T>(body: string, send: (client: IoTClient) => Promise<T>): Promise<T> {
  const client = new IoTClient({ endpoint: p.endpoints.http, region, credentials: creds, maxAttempts: 1 });
  client.middlewareStack.add(
    (next) => async (args: any) => {
      args.request.body = body;
      args.request.headers['content-length'] = String(Buffer.byteLength(body));
      return next(args);
    },
    { step: 'build', name: 'deepBody' },
  );
  try {
    return await send(client);
  } finally {
    client.destroy();
  }
}

async function sdkError(p: Promise<unknown>): Promise<{ name: string; status: number; message: string }> {
  try {
    await p;
  } catch (err: any) {
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('the request succeeded but should have failed');
}

/** Every message received, by topic. */
function collect(client: MqttClient): Map<string, Buffer[]> {
  const got = new Map<string, Buffer[]>();
  client.on('message', (topic, payload) => {
    const list = got.get(topic) ?? [];
    list.push(payload);
    got.set(topic, list);
  });
  return got;
}

let sub: MqttClient;
let got: Map<string, Buffer[]>;
let healthy: MqttClient;

beforeAll(async () => {
  p = await startTestPlatform({});
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  creds = { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! };
  iot = new IoTClient({ endpoint: p.endpoints.http, region, credentials: creds, maxAttempts: 1 });
  const errorTo = (topic: string) => ({ republish: { topic, qos: 1 } });
  const rules: Array<[string, string, object]> = [
    ['deep_star', "SELECT * FROM 'deep/star'", { republish: { topic: 'out/star', qos: 1 } }],
    ['deep_member', "SELECT a.a.a FROM 'deep/member'", { republish: { topic: 'out/member', qos: 1 } }],
    // The README's time-series rule.
    [
      'store_temp',
      "SELECT temperature FROM 'things/+/telemetry'",
      { timeseries: { thingName: '${topic(2)}' } },
    ],
  ];
  // The timeseries action is a Thingstead extension the SDK's model would drop: signed HTTP, like the CLI.
  for (const [ruleName, sql, action] of rules)
    await api('POST', `/rules/${ruleName}`, {
      body: { sql, actions: [action], errorAction: errorTo(`errors/${ruleName}`) },
    });
  sub = await mqtt.connectAsync(p.endpoints.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
  got = collect(sub);
  await sub.subscribeAsync(['deep/#', 'things/+/telemetry', 'errors/#', 'out/#'], { qos: 1 });
  healthy = await mqtt.connectAsync(p.endpoints.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
  await healthy.subscribeAsync('health/echo', { qos: 1 });
});

afterAll(async () => {
  await sub?.endAsync();
  await healthy?.endAsync();
  iot?.destroy();
  await p?.stop();
});

/** A well-behaved client's publish/subscribe round trip. */
async function roundTrip(): Promise<void> {
  const token = `ping-${Math.random()}`;
  const seen = new Promise<void>((resolve) => {
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic === 'health/echo' && payload.toString() === token) {
        healthy.off('message', onMessage);
        resolve();
      }
    };
    healthy.on('message', onMessage);
  });
  await healthy.publishAsync('health/echo', token, { qos: 1 });
  await seen;
}

const metrics = async (rule: string) => (await api('GET', `/rules/${rule}/metrics`)).metrics;
const received = (topic: string, payload: string) =>
  (got.get(topic) ?? []).some((b) => b.toString('utf8') === payload);

describe('deep JSON on the data path (rules, time series)', () => {
  const cases: Array<[string, string]> = [
    ['deep_star', 'deep/star'],
    ['deep_member', 'deep/member'],
    ['store_temp', 'things/t1/telemetry'],
  ];

  it('a too-deep payload is a rule error (errorAction), the message is still delivered, the platform lives', async () => {
    // Seeded: the same depths every run, from just past the limit (64) upwards. Objects stop at 15,000
    // levels (90 KB) so that the errorAction's republish, which carries the payload in base64, still fits
    // the 128 KB PUBLISH cap.
    const kind = <K extends 'array' | 'object'>(k: K, max: number) =>
      fc.record({ kind: fc.constant(k), depth: fc.integer({ min: 65, max }) });
    const samples: Array<{ kind: 'array' | 'object'; depth: number }> = fc.sample(
      fc.oneof(kind('array', 20_000), kind('object', 15_000)),
      { seed: 8, numRuns: 6 },
    );
    samples.push({ kind: 'array', depth: 10_000 }, { kind: 'object', depth: 10_000 });
    for (const { kind, depth } of samples) {
      const payload = kind === 'array' ? deepArray(depth) : deepObject(depth);
      for (const [rule, topic] of cases) {
        const before = await metrics(rule);
        const errorsBefore = got.get(`errors/${rule}`)?.length ?? 0;
        await healthy.publishAsync(topic, payload, { qos: 1 });
        // The original message reaches a plain subscriber unchanged.
        await waitFor(() => received(topic, payload), 5000, `${kind}(${depth}) on ${topic} delivered`);
        // The rule counts an evaluation error and its errorAction receives AWS's error payload.
        const errorMsg = await waitFor(
          () => (got.get(`errors/${rule}`)?.length ?? 0) > errorsBefore && got.get(`errors/${rule}`)!.at(-1),
          5000,
          `errorAction of ${rule} for ${kind}(${depth})`,
        );
        const body = JSON.parse(errorMsg.toString('utf8'));
        expect(body).toMatchObject({ ruleName: rule, topic });
        expect(body.failures[0].errorMessage).toMatch(/nesting depth.*64|maxJsonDepth/i);
        expect(Buffer.from(body.base64OriginalPayload, 'base64').toString('utf8')).toBe(payload);
        const after = await metrics(rule);
        expect(after.dropped.evaluation_error ?? 0).toBe((before.dropped.evaluation_error ?? 0) + 1);
        expect(after.errorActions).toBe(before.errorActions + 1);
        await roundTrip();
      }
    }
  }, 120_000);

  it('rules still evaluate ordinary payloads afterwards (time series included)', async () => {
    await healthy.publishAsync('deep/member', JSON.stringify({ a: { a: { a: 7 } } }), { qos: 1 });
    await waitFor(() => received('out/member', '{"a":7}'), 5000, 'SELECT a.a.a output');
    await healthy.publishAsync('things/t9/telemetry', JSON.stringify({ temperature: 21.5 }), { qos: 1 });
    await waitFor(
      async () =>
        (
          await p.timeseries.queryRange({
            things: ['t9'],
            metric: 'temperature',
            from: 0,
            to: Date.now() + 1,
          })
        ).length === 1,
      5000,
      'time-series point',
    );
    // Depth exactly at the limit is accepted.
    const atLimit = deepObject(63, '{"x":1}');
    await healthy.publishAsync('deep/star', atLimit, { qos: 1 });
    await waitFor(() => received('out/star', atLimit), 5000, 'depth-64 payload through SELECT *');
  });

  it('TestTopicRule (`rules test`) with a deep payload answers InvalidRequestException', async () => {
    for (const payload of [deepArray(10_000), deepObject(5000)]) {
      const err = await api('POST', '/rules/deep_star/test', { body: { payload } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AwsApiError);
      expect(err).toMatchObject({ status: 400, name: 'InvalidRequestException' });
      expect((err as Error).message).toMatch(/nesting depth/i);
    }
    // The payload as a JSON value inside the request body: refused by the body parser itself.
    const r = await rawSigned('POST', '/rules/deep_member/test', `{"payload":${deepObject(10_000)}}`);
    expect(r).toMatchObject({ status: 400, name: 'InvalidRequestException' });
    expect(r.json.message).toMatch(/nesting depth/i);
    // and a shallow payload still tests fine
    const ok = await api('POST', '/rules/deep_member/test', { body: { payload: '{"a":{"a":{"a":1}}}' } });
    expect(ok).toMatchObject({ matched: true, output: '{"a":1}' });
  });
});

describe('deep JSON and deep SQL on the control plane', () => {
  it('CreateThing / UpdateThing with deep attributes answer InvalidRequestException', async () => {
    for (const depth of [100, 10_000, 20_000]) {
      const deep = deepObject(depth, '"x"');
      const create = await sdkError(
        sdkWithBody(`{"attributePayload":{"attributes":{"k":${deep}}}}`, (c) =>
          c.send(new CreateThingCommand({ thingName: `deep${depth}`, attributePayload: { attributes: {} } })),
        ),
      );
      expect(create).toMatchObject({ name: 'InvalidRequestException', status: 400 });
      await iot.send(new CreateThingCommand({ thingName: `ok${depth}` }));
      const update = await sdkError(
        sdkWithBody(`{"attributePayload":{"attributes":${deep}}}`, (c) =>
          c.send(new UpdateThingCommand({ thingName: `ok${depth}`, attributePayload: { attributes: {} } })),
        ),
      );
      expect(update).toMatchObject({ name: 'InvalidRequestException', status: 400 });
    }
  });

  it('CreateTopicRule with deeply nested SQL answers SqlParseException with a position', async () => {
    const statements = [
      `SELECT ${'('.repeat(1000)}1${')'.repeat(1000)} AS x FROM 'a/b'`,
      `SELECT a FROM 'a/b' WHERE ${'('.repeat(5000)}a = 1${')'.repeat(5000)}`,
      `SELECT ${'NOT '.repeat(3000)}true AS x FROM 'a/b'`,
      `SELECT ${'-'.repeat(3000)}1 AS x FROM 'a/b'`,
      `SELECT a${'.a'.repeat(5000)} FROM 'a/b'`,
      `SELECT ${Array(5000).fill('a').join(' + ')} AS s FROM 'a/b'`,
      `SELECT ${'abs('.repeat(2000)}1${')'.repeat(2000)} AS x FROM 'a/b'`,
    ];
    for (const [i, sql] of statements.entries()) {
      const err = await sdkError(
        iot.send(
          new CreateTopicRuleCommand({
            ruleName: `deep_sql_${i}`,
            topicRulePayload: {
              sql,
              awsIotSqlVersion: '2016-03-23',
              actions: [{ republish: { topic: 'x', roleArn: undefined as never } }],
            },
          }),
        ),
      );
      expect(err, sql.slice(0, 40)).toMatchObject({ name: 'SqlParseException', status: 400 });
      expect(err.message).toMatch(/nest.*at position \d+/i);
    }
    // Ordinary nesting still compiles.
    await iot.send(
      new CreateTopicRuleCommand({
        ruleName: 'nested_ok',
        topicRulePayload: {
          sql: `SELECT ${'('.repeat(20)}a + 1${')'.repeat(20)} AS x FROM 'a/b'`,
          actions: [{ republish: { topic: 'x', roleArn: undefined as never } }],
        },
      }),
    );
  });
});

describe('API body size (reference §6)', () => {
  it('a 50 MB body is answered 413 RequestEntityTooLargeException, and the server answers the next request', async () => {
    const url = new URL(p.endpoints.http);
    const size = 50 * 1024 * 1024;
    const result = await new Promise<{ status: number; headers: Record<string, any>; body: string }>(
      (resolve, reject) => {
        const req = httpRequest({
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/things/big',
          headers: {
            'content-type': 'application/json',
            'content-length': String(size),
            authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/20250101/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`,
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on('error', reject);
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      },
    );
    expect(result.status).toBe(413);
    expect(result.headers['x-amzn-errortype']).toBe('RequestEntityTooLargeException');
    expect(JSON.parse(result.body).message).toMatch(/exceeds \d+ bytes/);
    // The same with fetch, then an ordinary SDK call.
    const res = await fetch(`${p.endpoints.http}/things/big2`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/20250101/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`,
      },
      body: Buffer.alloc(size, 0x20),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('x-amzn-errortype')).toBe('RequestEntityTooLargeException');
    expect(((await res.json()) as { message: string }).message).toMatch(/exceeds/);
    const list = await iot.send(new ListThingsCommand({}));
    expect(list.$metadata.httpStatusCode).toBe(200);
  }, 60_000);
});

describe('SigV4 credential scope region (reference §7.2)', () => {
  it('a request signed for another region is refused with InvalidSignatureException; the platform region works', async () => {
    const other = new IoTClient({
      endpoint: p.endpoints.http,
      region: 'eu-west-1',
      credentials: creds,
      maxAttempts: 1,
    });
    try {
      const err = await sdkError(other.send(new ListThingsCommand({})));
      expect(err).toMatchObject({ name: 'InvalidSignatureException', status: 403 });
      expect(err.message).toMatch(/Credential should be scoped to a valid region/);
    } finally {
      other.destroy();
    }
    expect((await iot.send(new ListThingsCommand({}))).$metadata.httpStatusCode).toBe(200);
  });

  it('a presigned WebSocket URL for another region is refused; the platform region connects', async () => {
    const presigned = async (signRegion: string) => {
      const port = p.endpoints.httpPort;
      const signer = new SignatureV4({
        credentials: creds,
        region: signRegion,
        service: 'iotdevicegateway',
        sha256: Sha256,
      });
      const signed = await signer.presign(
        new HttpRequest({
          method: 'GET',
          protocol: 'ws:',
          hostname: '127.0.0.1',
          port,
          path: '/mqtt',
          headers: { host: `127.0.0.1:${port}` },
        }),
        { expiresIn: 300 },
      );
      const query = Object.entries(signed.query ?? {})
        .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`)
        .join('&');
      return `ws://127.0.0.1:${port}/mqtt?${query}`;
    };
    const refused = await mqtt
      .connectAsync(await presigned('eu-west-1'), {
        protocolVersion: 5,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      })
      .then(
        async (c) => {
          await c.endAsync(true);
          return undefined;
        },
        (err: { code?: number }) => err.code,
      );
    expect(refused).toBe(0x86);
    const ok = await mqtt.connectAsync(await presigned(region), { protocolVersion: 5, reconnectPeriod: 0 });
    await ok.endAsync();
  });
});
