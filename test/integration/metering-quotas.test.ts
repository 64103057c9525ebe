import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import {
  AddThingToBillingGroupCommand,
  CreateBillingGroupCommand,
  CreateThingCommand,
  DescribeThingCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import { signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

// Quotas that explain themselves: a device over its publish quota gets PUBACK 0x97 with a reason string
// naming the limit (and DISCONNECT 0x96 when it keeps going at more than twice the rate), the others are
// unaffected, and the ledger, the metrics and a usage event show it. Limits change at run time.

let p: TestPlatform;
let iot: IoTClient;
let api: (method: string, path: string, req?: Parameters<typeof signedFetch>[3]) => Promise<any>;
const clients: MqttClient[] = [];

beforeAll(async () => {
  // Buckets of one second of their rate, so "5/s" lets exactly 5 through at once (the default holds 10 s).
  p = await startTestPlatform({ metering: { burstSeconds: 1 } });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  const credentials = {
    accessKeyId: profile.aws_access_key_id!,
    secretAccessKey: profile.aws_secret_access_key!,
  };
  iot = new IoTClient({ endpoint: p.endpoints.http, region: 'us-east-1', maxAttempts: 1, credentials });
  api = (method, path, req = {}) =>
    signedFetch({ endpoint: p.endpoints.http, region: 'us-east-1', ...credentials }, method, path, req);
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  iot?.destroy();
  await p?.stop();
});

/** Reason strings of the acknowledgements a client received (MQTT.js keeps only the code in its errors). */
const reasons = new Map<MqttClient, string[]>();

async function device(clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId, protocolVersion: 5, reconnectPeriod: 0 });
  clients.push(c);
  const seen: string[] = [];
  reasons.set(c, seen);
  c.on('packetreceive', (pk: any) => {
    if ((pk.cmd === 'puback' || pk.cmd === 'suback') && pk.properties?.reasonString)
      seen.push(pk.properties.reasonString);
  });
  return c;
}

/** Publish `n` QoS 1 messages at once; the reason codes of the refused ones. */
async function burst(c: MqttClient, topic: string, n: number): Promise<{ ok: number; refused: Error[] }> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => c.publishAsync(topic, `m${i}`, { qos: 1 })),
  );
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  return { ok: n - refused.length, refused };
}

test('over its publish quota a device gets 0x97 with the reason, others are unaffected; ledger, metrics and a usage event show it', async () => {
  await api('PUT', '/quotas', { body: { thingName: 'noisy', limits: { publishRate: 5 } } });
  const watcher = await device('quota-watcher');
  const events: any[] = [];
  watcher.on('message', (topic, payload) => events.push({ topic, ...JSON.parse(payload.toString()) }));
  await watcher.subscribeAsync('$thingstead/events/quota/+/throttled');

  const noisy = await device('noisy');
  const quiet = await device('quiet');
  const [n, q] = await Promise.all([burst(noisy, 'q/noisy', 15), burst(quiet, 'q/quiet', 15)]);
  expect(q).toEqual({ ok: 15, refused: [] });
  // The bucket holds one second of the rate: 5 pass (a few more if the burst spans refill time).
  expect(n.ok).toBeGreaterThanOrEqual(5);
  expect(n.ok).toBeLessThan(10);
  expect(n.refused.length).toBe(15 - n.ok);
  for (const err of n.refused) expect((err as Error & { code?: number }).code).toBe(0x97);
  const said = reasons.get(noisy)!;
  expect(said.length).toBe(n.refused.length);
  for (const reason of said) {
    expect(reason).toContain('quota exceeded: publishRate 5/s of thing noisy');
    expect(reason).toContain('thingstead quota set --thing noisy publishRate');
  }
  expect(reasons.get(quiet)).toEqual([]);

  await waitFor(() => events.length > 0, 5000, 'the usage event');
  expect(events[0]).toMatchObject({
    topic: '$thingstead/events/quota/noisy/throttled',
    thing: 'noisy',
    limit: 'publishRate',
    scope: 'thing',
    value: 5,
    action: 'refused',
  });
  expect(await scrapeMetric(p, 'thingstead_quota_throttled_total', /limit="publishRate",scope="thing"/)).toBe(
    n.refused.length,
  );
  expect(await scrapeMetric(p, 'thingstead_mqtt_messages_dropped_total', /reason="quota_publish"/)).toBe(
    n.refused.length,
  );

  await api('POST', '/usage/flush');
  const usage = await api('GET', '/usage', { query: { thing: 'noisy,quiet', groupBy: 'thing,unit' } });
  const amount = (thing: string, unit: string) =>
    usage.rows.find((r: any) => r.thing === thing && r.unit === unit)?.amount ?? 0;
  expect(amount('noisy', 'throttled')).toBe(n.refused.length);
  // Only admitted publishes are metered: CONNECT + the ones that passed.
  expect(amount('noisy', 'messages_in')).toBe(1 + n.ok);
  expect(amount('quiet', 'messages_in')).toBe(1 + 15);
  expect(amount('quiet', 'throttled')).toBe(0);

  // Changed at run time, no restart: the limit removed, the same connection publishes freely.
  await api('PUT', '/quotas', { body: { thingName: 'noisy', limits: { publishRate: null } } });
  await new Promise((r) => setTimeout(r, 1100)); // a fresh second, so the old bucket would have refilled too
  expect(await burst(noisy, 'q/noisy', 15)).toEqual({ ok: 15, refused: [] });
  expect(await api('GET', '/quotas', { query: { thingName: 'noisy' } })).toMatchObject({ limits: {} });
});

test('far over its rate (QoS 0 flood) a device is disconnected with 0x96 and the reason string', async () => {
  await api('PUT', '/quotas', { body: { thingName: 'flooder', limits: { publishRate: 10 } } });
  const c = await device('flooder');
  const disconnect = new Promise<any>((resolve) => c.once('disconnect', resolve));
  for (let i = 0; i < 100; i++) c.publish('q/flood', `m${i}`, { qos: 0 });
  const packet = await disconnect;
  expect(packet.reasonCode).toBe(0x96);
  expect(packet.properties?.reasonString).toContain(
    'message rate too high: publishRate 10/s of thing flooder',
  );
  expect(await scrapeMetric(p, 'thingstead_quota_throttled_total', /action="disconnected"/)).toBeGreaterThan(
    0,
  );
});

test('a billing group quota is shared by its members and names the group', async () => {
  await iot.send(new CreateBillingGroupCommand({ billingGroupName: 'fleet' }));
  for (const t of ['fleet-1', 'fleet-2']) {
    await iot.send(new CreateThingCommand({ thingName: t }));
    await iot.send(new AddThingToBillingGroupCommand({ billingGroupName: 'fleet', thingName: t }));
  }
  await api('PUT', '/quotas', { body: { billingGroupName: 'fleet', limits: { publishRate: 6 } } });
  const a = await device('fleet-1');
  const b = await device('fleet-2');
  const [ra, rb] = await Promise.all([burst(a, 'q/f1', 6), burst(b, 'q/f2', 6)]);
  expect(ra.ok + rb.ok).toBeGreaterThanOrEqual(6);
  expect(ra.ok + rb.ok).toBeLessThan(10);
  const refused = [...ra.refused, ...rb.refused];
  expect(refused.length).toBeGreaterThan(0);
  expect([...reasons.get(a)!, ...reasons.get(b)!][0]).toContain(
    'quota exceeded: publishRate 6/s of billing group fleet (change it with: thingstead quota set --billing-group fleet',
  );
});

test('subscriptions and API rate quotas: SUBACK 0x97 with the reason, ThrottlingException naming apiRate', async () => {
  await api('PUT', '/quotas', { body: { thingName: 'subs', limits: { subscriptions: 2 } } });
  const c = await device('subs');
  const suback = new Promise<any>((resolve) =>
    c.on('packetreceive', (pk: any) => pk.cmd === 'suback' && resolve(pk)),
  );
  await c.subscribeAsync(['s/1', 's/2', 's/3']).catch(() => undefined); // MQTT.js rejects on any refusal
  const packet = await suback;
  expect(packet.granted).toEqual([0, 0, 0x97]);
  expect(packet.properties?.reasonString).toContain('quota exceeded: subscriptions 2 of thing subs');

  await iot.send(new CreateThingCommand({ thingName: 'apiq' }));
  await api('PUT', '/quotas', { body: { thingName: 'apiq', limits: { apiRate: 2 } } });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 5 }, () => iot.send(new DescribeThingCommand({ thingName: 'apiq' }))),
  );
  const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
  expect(rejected.length).toBeGreaterThanOrEqual(2);
  expect(rejected[0]!.reason).toMatchObject({
    name: 'ThrottlingException',
    message: expect.stringContaining('quota exceeded: apiRate 2/s of thing apiq'),
  });

  await expect(
    api('PUT', '/quotas', { body: { thingName: 'x', limits: { publishRat: 1 } } }),
  ).rejects.toMatchObject({
    name: 'InvalidRequestException',
    message: expect.stringContaining("unknown quota limit 'publishRat'"),
  });
  await expect(api('PUT', '/quotas', { body: { limits: { publishRate: 1 } } })).rejects.toMatchObject({
    message: expect.stringContaining('name exactly one of thingName or billingGroupName'),
  });
  await expect(
    api('PUT', '/quotas', { body: { thingName: 'x', limits: { publishRate: -1 } } }),
  ).rejects.toMatchObject({
    message: expect.stringContaining("quota limit 'publishRate' must be a number >= 0"),
  });
});
