import { readFileSync } from 'node:fs';
import { IoTDataPlaneClient, UpdateThingShadowCommand } from '@aws-sdk/client-iot-data-plane';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Shadow topics as rule sources (reference §8.2, §10.1): the platform's `$aws/things/+/shadow/update/accepted`
 * and `/update/documents` publishes reach topic rules as they do on AWS, so a rule with the time-series
 * action stores every reported value; and the history extension (`shadow.history`): every accepted version
 * (and a delete) is queryable from the time-series store as metric `$shadow` or `$shadow/<name>`.
 * Devices are MQTT.js clients; rules and queries go over SigV4-signed HTTP, updates also through the SDK.
 */

let p: TestPlatform;
let creds: { accessKeyId: string; secretAccessKey: string };
let data: IoTDataPlaneClient;
const clients: MqttClient[] = [];
const api = (method: string, path: string, request: Parameters<typeof signedFetch>[3] = {}) =>
  signedFetch({ endpoint: p.endpoints.http, region: p.config.region, ...creds }, method, path, request);

beforeAll(async () => {
  p = await startTestPlatform({
    shadow: { history: true, maxUpdatesPerSecondPerThing: 0, maxInFlightPerConnection: 0 },
  });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  creds = { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! };
  data = new IoTDataPlaneClient({
    endpoint: p.endpoints.http,
    region: p.config.region,
    credentials: creds,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  data?.destroy();
  await p?.stop();
});

/** A device that sends shadow updates over MQTT and waits for each /update/accepted. */
async function device(thing: string) {
  const c = await mqtt.connectAsync(p.endpoints.mqtt!, {
    clientId: thing,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  clients.push(c);
  const T = `$aws/things/${thing}/shadow`;
  const accepted: any[] = [];
  c.on('message', (topic, payload) => {
    if (topic === `${T}/update/accepted`) accepted.push(JSON.parse(payload.toString()));
  });
  await c.subscribeAsync(`${T}/update/accepted`, { qos: 1 });
  return {
    async update(state: Record<string, unknown>) {
      const n = accepted.length;
      await c.publishAsync(`${T}/update`, JSON.stringify({ state }), { qos: 1 });
      const doc = await waitFor(() => accepted[n], 5000, `update ${n + 1} of ${thing} accepted`);
      // The time-series store keys a point by (thing, metric, ms): keep each update in its own millisecond.
      const t = Date.now();
      await waitFor(() => Date.now() > t);
      return doc;
    },
  };
}

const series = (thing: string, metric: string) =>
  api('GET', '/timeseries/query', { query: { metric, thing, from: 0, to: Date.now() + 60_000 } });

describe('shadow topics as rule sources, into the time-series store', () => {
  test('every reported temperature from /update/accepted is stored under its thing', async () => {
    await api('POST', '/rules/shadow_temperature', {
      body: {
        sql: "SELECT state.reported.temperature AS temperature, topic(3) AS thing FROM '$aws/things/+/shadow/update/accepted'",
        awsIotSqlVersion: '2016-03-23',
        actions: [{ timeseries: { thingName: '${topic(3)}', metrics: ['temperature'] } }],
      },
    });
    const rule = await api('GET', '/rules/shadow_temperature');
    expect(rule.rule.sql).toContain("'$aws/things/+/shadow/update/accepted'");

    const a = await device('therm-a');
    const b = await device('therm-b');
    const readings = [20.5, 21, 22.25, 19, 23.5];
    for (const [i, t] of readings.entries()) {
      await a.update({ reported: { temperature: t, humidity: 40 + i } });
      await b.update({ reported: { temperature: t + 100 } });
    }
    // An update without a reported temperature stores nothing (the SELECT gives no temperature).
    await a.update({ desired: { temperature: 18 } });
    // A REST update is published the same way and is stored as well.
    await data.send(
      new UpdateThingShadowCommand({
        thingName: 'therm-a',
        payload: new TextEncoder().encode(JSON.stringify({ state: { reported: { temperature: 24 } } })),
      }),
    );

    await waitFor(
      async () =>
        (await p.timeseries.listSeries('therm-a')).find((s) => s.metric === 'temperature')?.points === 6,
      10_000,
      'therm-a points',
    );
    await waitFor(
      async () =>
        (await p.timeseries.listSeries('therm-b')).find((s) => s.metric === 'temperature')?.points === 5,
      10_000,
      'therm-b points',
    );
    const ra = await series('therm-a', 'temperature');
    expect(ra.points.map((pt: any) => pt.value)).toEqual([...readings, 24]);
    expect(ra.points.every((pt: any) => pt.thing === 'therm-a')).toBe(true);
    const rb = await series('therm-b', 'temperature');
    expect(rb.points.map((pt: any) => pt.value)).toEqual(readings.map((t) => t + 100));
    // Only the picked metric was stored (not `thing`, not humidity: the SELECT did not project it).
    expect((await p.timeseries.listSeries('therm-a')).map((s) => s.metric).sort()).toEqual(
      ['$shadow', 'temperature'].sort(),
    );
    const m = await api('GET', '/rules/shadow_temperature/metrics');
    expect(m.metrics).toMatchObject({ matched: 12, actionFailed: 0 });
  });

  test('/update/documents as a source: the change between previous and current reported', async () => {
    await api('POST', '/rules/shadow_change', {
      body: {
        sql:
          'SELECT current.state.reported.level - previous.state.reported.level AS change ' +
          "FROM '$aws/things/+/shadow/update/documents' WHERE current.version > 1",
        awsIotSqlVersion: '2016-03-23',
        actions: [{ timeseries: { thingName: '${topic(3)}', metrics: ['change'] } }],
      },
    });
    const d = await device('tank-1');
    for (const level of [10, 15, 12, 30]) await d.update({ reported: { level } });
    await waitFor(
      async () => (await p.timeseries.listSeries('tank-1')).find((s) => s.metric === 'change')?.points === 3,
      10_000,
      'changes stored',
    );
    const r = await series('tank-1', 'change');
    expect(r.points.map((pt: any) => pt.value)).toEqual([5, -3, 18]);
  });
});

describe('history extension (shadow.history)', () => {
  const history = async (thing: string, metric = '$shadow') =>
    (await series(thing, metric)).points.map((pt: any) => JSON.parse(pt.value));

  test('every accepted version of the classic shadow is queryable, in order, with its whole state', async () => {
    const d = await device('hist-1');
    await d.update({ desired: { mode: 'eco' } });
    await d.update({ reported: { mode: 'off', t: 1 } });
    await d.update({ reported: { mode: 'eco', t: null } });
    await waitFor(async () => (await history('hist-1')).length === 3, 10_000, 'three versions');
    expect(await history('hist-1')).toEqual([
      { version: 1, state: { desired: { mode: 'eco' } } },
      { version: 2, state: { desired: { mode: 'eco' }, reported: { mode: 'off', t: 1 } } },
      { version: 3, state: { desired: { mode: 'eco' }, reported: { mode: 'eco' } } },
    ]);
  });

  test('a burst of concurrent updates (HTTP and MQTT): no version is missing from the history', async () => {
    const n = 40;
    const c = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'hist-burst', protocolVersion: 5 });
    clients.push(c);
    await Promise.all([
      ...Array.from({ length: n }, (_, i) =>
        data.send(
          new UpdateThingShadowCommand({
            thingName: 'hist-burst',
            payload: new TextEncoder().encode(JSON.stringify({ state: { reported: { [`h${i}`]: i } } })),
          }),
        ),
      ),
      // MQTT requests queue in the shadow service and run back to back, several per millisecond.
      ...Array.from({ length: n }, (_, i) =>
        c.publishAsync(
          '$aws/things/hist-burst/shadow/update',
          JSON.stringify({ state: { reported: { [`m${i}`]: i } } }),
        ),
      ),
    ]);
    const done = () => p.shadows.service.peek('hist-burst', '');
    await waitFor(
      async () => Object.keys((await done())?.state.reported ?? {}).length === 2 * n,
      10_000,
      'every update applied',
    );
    let versions: number[] = [];
    await waitFor(
      async () => (versions = (await history('hist-burst')).map((h: any) => h.version)).length >= 2 * n,
      10_000,
      `${2 * n} versions in the history`,
    ).catch(() => undefined);
    expect(versions).toEqual(Array.from({ length: 2 * n }, (_, i) => i + 1));
  });

  test('named shadows go to $shadow/<name>; a delete is recorded with deleted: true', async () => {
    const T = '$aws/things/hist-2/shadow/name/cfg';
    const c = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'hist-2', protocolVersion: 5 });
    clients.push(c);
    const answers: string[] = [];
    c.on('message', (topic) => answers.push(topic));
    await c.subscribeAsync(`${T}/+/accepted`, { qos: 1 });
    await c.publishAsync(`${T}/update`, JSON.stringify({ state: { reported: { fw: '1.0' } } }), { qos: 1 });
    await waitFor(() => answers.includes(`${T}/update/accepted`));
    const t = Date.now();
    await waitFor(() => Date.now() > t);
    await c.publishAsync(`${T}/delete`, '', { qos: 1 });
    await waitFor(() => answers.includes(`${T}/delete/accepted`));
    await waitFor(async () => (await history('hist-2', '$shadow/cfg')).length === 2, 10_000, 'two records');
    expect(await history('hist-2', '$shadow/cfg')).toEqual([
      { version: 1, state: { reported: { fw: '1.0' } } },
      { version: 1, state: {}, deleted: true },
    ]);
    // The classic shadow of the thing has no history: it was never written.
    expect(await history('hist-2')).toEqual([]);
  });
});
