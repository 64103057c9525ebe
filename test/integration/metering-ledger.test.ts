import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import {
  AddThingToBillingGroupCommand,
  CreateBillingGroupCommand,
  CreateThingCommand,
  CreateTopicRuleCommand,
  DescribeThingCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import { signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

// The usage ledger counts exactly, in AWS's units (AWS IoT Core pricing, "additional metering details"),
// for known traffic from real clients: MQTT.js (v5) and a raw MQTT 3.1.1 socket that sends PINGREQs.
// The metering clock is injected, so connections are held for known minutes without waiting them.

const T0 = Date.UTC(2030, 0, 15, 10, 5, 0);
let clock = T0;
let p: TestPlatform;
let iot: IoTClient;
let api: (method: string, path: string, req?: Parameters<typeof signedFetch>[3]) => Promise<any>;

beforeAll(async () => {
  p = await startTestPlatform({}, { clock: () => clock });
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
  iot?.destroy();
  await p?.stop();
});

/** Sum of one unit for one thing (over billing groups and hours) from GET /usage. */
async function usage(thing: string): Promise<Record<string, number>> {
  const r = await api('GET', '/usage', {
    query: { from: String(T0 - 3_600_000), to: String(T0 + 3 * 3_600_000), thing, groupBy: 'thing,unit' },
  });
  return Object.fromEntries(
    (r.rows as Array<{ unit: string; amount: number }>).map((x) => [x.unit, x.amount]),
  );
}

function rawClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test('known traffic gives exact counts in every unit: 5 KB messages, retained, shadow, rules, registry, minutes', async () => {
  // Registry: two metered operations naming meter-a (CreateThing, DescribeThing); billing groups are not.
  await iot.send(new CreateThingCommand({ thingName: 'meter-a' }));
  await iot.send(new CreateBillingGroupCommand({ billingGroupName: 'team-red' }));
  await iot.send(new AddThingToBillingGroupCommand({ billingGroupName: 'team-red', thingName: 'meter-a' }));
  await iot.send(new DescribeThingCommand({ thingName: 'meter-a' }));
  // One rule with one action on the device's topics: rules triggered and actions executed per 5 KB of payload.
  await iot.send(
    new CreateTopicRuleCommand({
      ruleName: 'meter_rule',
      topicRulePayload: {
        sql: "SELECT * FROM 'm/a/#'",
        awsIotSqlVersion: '2016-03-23',
        actions: [{ republish: { topic: 'out/meter', roleArn: 'arn:aws:iam::000000000000:role/r', qos: 0 } }],
      },
    }),
  );

  // Device A (MQTT.js v5, anonymous dev mode: metered as its client id, which names the thing meter-a).
  const a = await mqtt.connectAsync(p.endpoints.mqtt!, {
    clientId: 'meter-a',
    protocolVersion: 5,
    keepalive: 0,
  });
  await a.subscribeAsync('m/a/#', { qos: 0 }); // SUBSCRIBE: 1 message in
  const got: number[] = [];
  a.on('message', (topic, payload) => topic.startsWith('m/a/') && got.push(payload.length));
  // Metered size = topic (5 bytes, 'm/a/x') + payload: 105 -> 1, 5120 -> 1, 5121 -> 2, 12005 -> 3.
  for (const size of [100, 5115, 5116, 12000])
    await a.publishAsync('m/a/x', Buffer.alloc(size, 120), { qos: 1 });
  // Retained: a message in and a retained message (AWS meters both), 1 unit each.
  await a.publishAsync('r/a', Buffer.alloc(50, 121), { qos: 1, retain: true });
  // A shadow update over MQTT: a message in (1 unit) and a shadow operation in 1 KB units.
  const doc = JSON.stringify({ state: { reported: { pad: 'x'.repeat(1400) } } });
  const shadowBytes = '$aws/things/meter-a/shadow/update'.length + doc.length;
  await a.publishAsync('$aws/things/meter-a/shadow/update', doc, { qos: 1 });
  await waitFor(() => got.length === 4, 5000, 'the four deliveries to the self-subscription');

  // Device B: raw MQTT 3.1.1 (CONNECT, three PINGREQ, DISCONNECT): only the CONNECT is metered.
  clock = T0 + 210_000; // A has now been up 3.5 minutes
  const b = await rawClient(p.endpoints.mqttPort!);
  const frames: string[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (pk) => frames.push(pk.cmd));
  b.on('data', (d) => parser.parse(d));
  b.write(
    mqttPacket.generate({
      cmd: 'connect',
      clientId: 'meter-b',
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
    }),
  );
  await waitFor(() => frames.includes('connack'), 5000, 'CONNACK for meter-b');
  for (let i = 0; i < 3; i++) b.write(mqttPacket.generate({ cmd: 'pingreq' }));
  await waitFor(() => frames.filter((f) => f === 'pingresp').length === 3, 5000, 'three PINGRESP');

  await a.endAsync(); // 3.5 minutes: 4 started minutes
  clock = T0 + 240_000; // B: 30 s, 1 started minute
  b.end(mqttPacket.generate({ cmd: 'disconnect' }));
  await waitFor(() => p.broker.clients().length === 0, 5000, 'both clients gone');
  // The rules engine evaluates off the MQTT path: wait until the rule has matched the four messages.
  await waitFor(() => p.rules.stats('meter_rule').matched >= 4, 5000, 'rule matches');
  await api('POST', '/usage/flush');

  const ua = await usage('meter-a');
  expect(ua).toMatchObject({
    // CONNECT 1 + SUBSCRIBE 1 + publishes 1+1+2+3 + retained publish 1 + shadow update 1
    messages_in: 11,
    messages_out: 7, // the four deliveries: 1+1+2+3
    retained: 1,
    shadow_ops: Math.ceil(shadowBytes / 1024),
    connection_minutes: 4,
    registry_ops: 2,
    // Rules count the payload: 100, 5115, 5116 -> 1 each; 12000 -> 3.
    rules_triggered: 6,
    actions_executed: 6,
  });
  // 4 KB units (Azure): 105 -> 1, 5120 -> 2, 5121 -> 2, 12005 -> 3 (+ CONNECT, SUBSCRIBE, retained, shadow 1 each).
  expect(ua.messages_in_4kb).toBe(4 + 1 + 2 + 2 + 3);
  expect(ua.messages_out_4kb).toBe(1 + 2 + 2 + 3);
  expect(ua.bytes_in).toBeGreaterThan(100 + 5115 + 5116 + 12000 + 50 + doc.length);
  expect(ua.bytes_out).toBeGreaterThan(100 + 5115 + 5116 + 12000);
  expect(ua.throttled).toBeUndefined();

  const ub = await usage('meter-b');
  // PINGREQ/PINGRESP, CONNACK and DISCONNECT are not metered.
  expect(ub).toMatchObject({ messages_in: 1, connection_minutes: 1 });
  expect(ub.messages_out).toBeUndefined();
  b.destroy();

  // Per billing group: meter-a's traffic was counted under team-red (the membership came first).
  const byGroup = await api('GET', '/usage', {
    query: {
      from: String(T0 - 3_600_000),
      to: String(T0 + 3_600_000),
      billingGroup: 'team-red',
      unit: 'messages_in,messages_out',
      groupBy: 'billingGroup,unit',
    },
  });
  expect(byGroup.rows).toEqual(
    expect.arrayContaining([
      { billingGroup: 'team-red', unit: 'messages_in', amount: 11 },
      { billingGroup: 'team-red', unit: 'messages_out', amount: 7 },
    ]),
  );
  // Everything landed in the UTC hour of the injected clock.
  const hours = await api('GET', '/usage', {
    query: { from: String(T0 - 3_600_000), to: String(T0 + 3_600_000), thing: 'meter-a', groupBy: 'hour' },
  });
  expect(hours.rows.map((r: { hour: string }) => r.hour)).toEqual(['2030-01-15T10:00:00.000Z']);
});

test('a bad usage query gets a precise error naming the problem', async () => {
  await expect(api('GET', '/usage', { query: { unit: 'messages' } })).rejects.toMatchObject({
    name: 'InvalidRequestException',
    message: expect.stringContaining("unknown usage unit 'messages'"),
  });
  await expect(api('GET', '/usage', { query: { groupBy: 'region' } })).rejects.toMatchObject({
    message: expect.stringContaining('groupBy must be one of'),
  });
  await expect(
    api('GET', '/usage', { query: { from: '2030-01-02', to: '2030-01-01' } }),
  ).rejects.toMatchObject({
    message: expect.stringContaining('from must be before to'),
  });
});

test('metering.enabled=false: the broker meters nothing and enforces no quota; the API says metering is off', async () => {
  const off = await startTestPlatform({ metering: { enabled: false, thingDefaults: { publishRate: 1 } } });
  try {
    const profile = parseCredentialsFile(readFileSync(off.endpoints.credentialsFile!, 'utf8')).default!;
    const call = (method: string, path: string, req: Parameters<typeof signedFetch>[3] = {}) =>
      signedFetch(
        {
          endpoint: off.endpoints.http,
          region: 'us-east-1',
          accessKeyId: profile.aws_access_key_id!,
          secretAccessKey: profile.aws_secret_access_key!,
        },
        method,
        path,
        req,
      );
    expect(off.metering.meter).toBeNull();
    await call('PUT', '/quotas', { body: { thingName: 'off-dev', limits: { publishRate: 1 } } });
    const c = await mqtt.connectAsync(off.endpoints.mqtt!, { clientId: 'off-dev', protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await c.publishAsync('off/x', 'm', { qos: 1 }); // no quota applies
    await c.endAsync();
    await expect(call('POST', '/usage/flush')).rejects.toMatchObject({
      message: expect.stringContaining('metering is off on this node (metering.enabled=false)'),
    });
    expect((await call('GET', '/usage', { query: { thing: 'off-dev' } })).rows).toEqual([]);
  } finally {
    await off.stop();
  }
});
