import { request } from 'node:https';
import { IoTClient } from '@aws-sdk/client-iot';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signedFetch } from '../../src/api/index.js';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { createDevice, type Device } from './security-helpers.js';

// HTTP publishes are metered as the MQTT messages they become (issue 16; AWS IoT Core pricing, additional
// metering details: messages in 5 KB blocks, an HTTP publish is one message): the SigV4 data plane's
// Publish through @aws-sdk/client-iot-data-plane (an access key: thing ''), and a device's
// POST /topics/{topic} over mutual TLS (the certificate's thing), which its publish quota also holds, with
// 429 ThrottlingException naming the limit. The metering clock stands still, so a bucket never refills
// while a test runs: a limit of N lets exactly N through.

const T0 = Date.now();
let clock = T0;
let p: TestPlatform;
let iot: IoTClient;
let data: IoTDataPlaneClient;
let api: (method: string, path: string, req?: Parameters<typeof signedFetch>[3]) => Promise<any>;
let A: string;
const routed: Array<{ topic: string; bytes: number }> = [];

beforeAll(async () => {
  p = await startTestPlatform(
    {
      mqtt: { allowAnonymous: false },
      deviceHttps: { port: 0, host: '127.0.0.1' },
      metering: { burstSeconds: 1 },
    },
    { clock: () => clock },
  );
  const key = await p.credentials.create('metering-http', 'admin');
  const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  const client = { endpoint: p.endpoints.http, region: p.config.region, credentials, maxAttempts: 1 };
  iot = new IoTClient(client);
  data = new IoTDataPlaneClient(client);
  api = (method, path, req = {}) =>
    signedFetch({ endpoint: p.endpoints.http, region: p.config.region, ...credentials }, method, path, req);
  A = `arn:aws:iot:${p.config.region}:${p.config.accountId}`;
  p.broker.subscribeInternal('#', (m) => routed.push({ topic: m.topic, bytes: m.payload.length }));
});
afterAll(async () => {
  iot?.destroy();
  data?.destroy();
  await p?.stop();
});

/** Every unit of every thing, from GET /usage after a flush: usage[thing][unit]. */
async function usage(): Promise<Record<string, Record<string, number>>> {
  await api('POST', '/usage/flush');
  const r = await api('GET', '/usage', {
    query: { from: String(T0 - 3_600_000), to: String(T0 + 3_600_000), groupBy: 'thing,unit' },
  });
  const out: Record<string, Record<string, number>> = {};
  for (const row of r.rows as Array<{ thing: string; unit: string; amount: number }>)
    (out[row.thing] ??= {})[row.unit] = row.amount;
  return out;
}

/** A device's POST /topics/{topic} over mutual TLS. */
function post(
  dev: Device,
  topic: string,
  body: string | Buffer,
  query = 'qos=1',
): Promise<{ status: number; errorType?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: p.endpoints.deviceHttpsPort!,
        method: 'POST',
        path: `/topics/${encodeURIComponent(topic)}?${query}`,
        ca: p.tls.caPem,
        cert: dev.certPem,
        key: dev.keyPem,
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            errorType: res.headers['x-amzn-errortype'] as string | undefined,
            body: text,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const devicePolicy = (name: string, thing: string) => ({
  name,
  statements: [
    {
      Effect: 'Allow',
      Action: ['iot:Publish', 'iot:RetainPublish'],
      Resource: [`${A}:topic/h/${thing}/*`, `${A}:topic/$aws/things/${thing}/shadow/update`],
    },
  ],
});

test('SigV4 data-plane publishes are metered in 5 KB messages (retained too) under thing ""', async () => {
  const before = (await usage())[''] ?? {};
  // Metered size = topic ('dp/m', 4 bytes) + payload: 100 -> 1, 5116 -> 1 (5120 bytes), 5117 -> 2, 10300 -> 3.
  for (const size of [100, 5116, 5117, 10300])
    await data.send(new PublishCommand({ topic: 'dp/m', qos: 1, payload: Buffer.alloc(size, 97) }));
  // Retained: one message and one retained message (AWS meters "MQTT PUBLISH" and "MQTT RETAINED").
  await data.send(new PublishCommand({ topic: 'dp/r', retain: true, payload: Buffer.from('{"on":true}') }));
  // MQTT 5 properties count toward the size, as on MQTT: 'dp/m' + 5000 + contentType (116 bytes) + 'k'+'v'.
  await data.send(
    new PublishCommand({
      topic: 'dp/m',
      payload: Buffer.alloc(5000, 98),
      contentType: 'c'.repeat(116),
      userProperties: JSON.stringify([{ k: 'v' }]),
    }),
  );
  // Refused requests are not messages: a wildcard topic (400).
  await expect(
    data.send(new PublishCommand({ topic: 'dp/+', payload: Buffer.from('x') })),
  ).rejects.toMatchObject({ name: 'InvalidRequestException' });
  await waitFor(() => routed.filter((m) => m.topic.startsWith('dp/')).length === 6, 5000, 'six routed');

  const u = (await usage())[''] ?? {};
  const delta = (unit: string) => (u[unit] ?? 0) - (before[unit] ?? 0);
  expect(delta('messages_in')).toBe(1 + 1 + 2 + 3 + 1 + 2);
  expect(delta('retained')).toBe(1);
  // 4 KB blocks (Azure): 104 -> 1, 5120 -> 2, 5121 -> 2, 10304 -> 3, 15 -> 1, 5122 -> 2.
  expect(delta('messages_in_4kb')).toBe(1 + 2 + 2 + 3 + 1 + 2);
  expect(delta('bytes_in')).toBe(100 + 5116 + 5117 + 10300 + 11 + 5000);
  expect(delta('throttled')).toBe(0);
});

test('device HTTPS publishes are metered to the certificate thing, shadow topics as shadow operations', async () => {
  const dev = await createDevice(iot, 'http-meter', devicePolicy('http-meter-p', 'http-meter'));
  // topic 'h/http-meter/t' is 14 bytes: 5106 -> 5120 (1), 5107 -> 5121 (2).
  expect((await post(dev, 'h/http-meter/t', Buffer.alloc(5106, 99))).status).toBe(200);
  expect((await post(dev, 'h/http-meter/t', Buffer.alloc(5107, 99))).status).toBe(200);
  expect((await post(dev, 'h/http-meter/s', '{"state":1}', 'qos=1&retain=true')).status).toBe(200);
  const shadowTopic = '$aws/things/http-meter/shadow/update';
  const doc = JSON.stringify({ state: { reported: { pad: 'x'.repeat(1200) } } });
  expect((await post(dev, shadowTopic, doc)).status).toBe(200);
  // Not authorized (403) and invalid (400): not metered.
  expect((await post(dev, 'other/topic', 'x')).status).toBe(403);
  expect((await post(dev, 'h/http-meter/t', 'x', 'qos=2')).status).toBe(400);

  const u = (await usage())['http-meter']!;
  expect(u).toMatchObject({
    messages_in: 1 + 2 + 1 + 1,
    retained: 1,
    shadow_ops: Math.ceil((shadowTopic.length + doc.length) / 1024),
    bytes_in: 5106 + 5107 + 11 + doc.length,
  });
  expect(u.throttled).toBeUndefined();
});

test('over its publish quota a device gets 429 ThrottlingException naming the limit; others are unaffected', async () => {
  const noisy = await createDevice(iot, 'http-noisy', devicePolicy('http-noisy-p', 'http-noisy'));
  const quiet = await createDevice(iot, 'http-quiet', devicePolicy('http-quiet-p', 'http-quiet'));
  await api('PUT', '/quotas', { body: { thingName: 'http-noisy', limits: { publishRate: 2 } } });
  const throttledBefore = await scrapeMetric(
    p,
    'thingstead_quota_throttled_total',
    /limit="publishRate",scope="thing",action="refused"/,
  );

  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await post(noisy, 'h/http-noisy/t', `n${i}`));
  for (let i = 0; i < 5; i++) expect((await post(quiet, 'h/http-quiet/t', `q${i}`)).status).toBe(200);

  // The clock stands still: the bucket holds 2 and never refills.
  expect(answers.map((a) => a.status)).toEqual([200, 200, 429, 429, 429]);
  for (const a of answers.slice(2)) {
    expect(a.errorType).toBe('ThrottlingException');
    expect(JSON.parse(a.body).message).toBe(
      'Rate exceeded for publishes of http-noisy: quota exceeded: publishRate 2/s of thing http-noisy ' +
        '(change it with: thingstead quota set --thing http-noisy publishRate <value>)',
    );
  }
  // Nothing refused was routed.
  await waitFor(() => routed.filter((m) => m.topic === 'h/http-quiet/t').length === 5, 5000, 'quiet routed');
  expect(routed.filter((m) => m.topic === 'h/http-noisy/t').length).toBe(2);
  expect(
    await scrapeMetric(
      p,
      'thingstead_quota_throttled_total',
      /limit="publishRate",scope="thing",action="refused"/,
    ),
  ).toBe(throttledBefore + 3);

  const u = await usage();
  expect(u['http-noisy']).toMatchObject({ messages_in: 2, throttled: 3 });
  expect(u['http-quiet']).toMatchObject({ messages_in: 5 });
  expect(u['http-quiet']!.throttled).toBeUndefined();

  // Changed at run time: the limit removed (the default applies again), a second later it publishes.
  await api('PUT', '/quotas', { body: { thingName: 'http-noisy', limits: { publishRate: null } } });
  clock += 1000;
  expect((await post(noisy, 'h/http-noisy/t', 'again')).status).toBe(200);
});
