import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Device shadows over MQTT through the whole platform with MQTT.js (reference §8.2): documents asserted
 * field by field, deltas, versions and 409, delete keeping the version, named shadows, an offline device
 * getting its delta, the `sinceVersion` extension, version-ordered delivery and a restart.
 */

let p: TestPlatform;
const clients: MqttClient[] = [];

interface Received {
  topic: string;
  body: any;
}

async function connect(clientId: string, extra: mqtt.IClientOptions = {}) {
  // Listen before CONNACK: a persistent session's queued messages arrive right after it.
  const c = mqtt.connect(p.endpoints.mqtt!, { clientId, protocolVersion: 5, reconnectPeriod: 0, ...extra });
  clients.push(c);
  const got: Received[] = [];
  const parse = (text: string) => {
    try {
      return JSON.parse(text);
    } catch {
      return text; // a request routed back to a subscriber of `#` may be any bytes
    }
  };
  c.on('message', (topic, payload) =>
    got.push({ topic, body: payload.length ? parse(payload.toString()) : null }),
  );
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return { c, got };
}

/** Publish a request and wait for the first answer on `<topic>/accepted|rejected`. */
async function request(
  dev: { c: MqttClient; got: Received[] },
  topic: string,
  body: unknown,
): Promise<Received> {
  const from = dev.got.length;
  await dev.c.publishAsync(topic, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
  return waitFor(
    () => dev.got.slice(from).find((m) => m.topic === `${topic}/accepted` || m.topic === `${topic}/rejected`),
    5000,
    `answer to ${topic}`,
  );
}

beforeAll(async () => {
  p = await startTestPlatform({ shadow: { maxUpdatesPerSecondPerThing: 0 } }, { keepData: true });
});
afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  await p?.stop();
});

describe('classic shadow', () => {
  const T = '$aws/things/lamp/shadow';
  let app: Awaited<ReturnType<typeof connect>>;

  beforeAll(async () => {
    app = await connect('lamp-app');
    await app.c.subscribeAsync(`${T}/#`, { qos: 1 });
  });

  test('update desired: accepted with the fields sent, delta, documents; all in version order', async () => {
    const before = Math.floor(Date.now() / 1000);
    const from = app.got.length;
    const accepted = await request(app, `${T}/update`, {
      state: { desired: { color: 'red', level: { brightness: 80 } } },
      clientToken: 'tok-1',
    });
    expect(accepted.topic).toBe(`${T}/update/accepted`);
    const b = accepted.body;
    expect(Object.keys(b).sort()).toEqual(['clientToken', 'metadata', 'state', 'timestamp', 'version']);
    expect(b.state).toEqual({ desired: { color: 'red', level: { brightness: 80 } } });
    expect(b.version).toBe(1);
    expect(b.clientToken).toBe('tok-1');
    expect(b.timestamp).toBeGreaterThanOrEqual(before);
    expect(b.timestamp).toBeLessThan(before + 5);
    expect(b.metadata).toEqual({
      desired: { color: { timestamp: b.timestamp }, level: { brightness: { timestamp: b.timestamp } } },
    });
    const delta = await waitFor(() => app.got.find((m) => m.topic === `${T}/update/delta`));
    expect(delta.body).toEqual({
      version: 1,
      timestamp: b.timestamp,
      state: { color: 'red', level: { brightness: 80 } },
      metadata: { color: { timestamp: b.timestamp }, level: { brightness: { timestamp: b.timestamp } } },
      clientToken: 'tok-1',
    });
    const docs = await waitFor(() => app.got.find((m) => m.topic === `${T}/update/documents`));
    expect(docs.body.previous).toBeUndefined();
    expect(docs.body.current).toEqual({
      state: { desired: { color: 'red', level: { brightness: 80 } } },
      metadata: b.metadata,
      version: 1,
    });
    // The request itself is routed too (AWS lets clients subscribe to it); the answers follow in order.
    const answers = app.got
      .slice(from)
      .filter((m) => !m.topic.endsWith('/update'))
      .map((m) => m.topic);
    expect(answers).toEqual([`${T}/update/accepted`, `${T}/update/delta`, `${T}/update/documents`]);
  });

  test('reported catches up: no delta, documents has previous and current', async () => {
    app.got.length = 0;
    const r = await request(app, `${T}/update`, {
      state: { reported: { color: 'red', level: { brightness: 80 } } },
    });
    expect(r.body.version).toBe(2);
    expect(r.body.clientToken).toBeUndefined();
    const docs = await waitFor(() => app.got.find((m) => m.topic === `${T}/update/documents`));
    expect(docs.body.previous.version).toBe(1);
    expect(docs.body.current.version).toBe(2);
    expect(docs.body.current.state.reported).toEqual({ color: 'red', level: { brightness: 80 } });
    expect(app.got.some((m) => m.topic === `${T}/update/delta`)).toBe(false);
  });

  test('get: the whole document, delta only where desired and reported differ, with its full path', async () => {
    await request(app, `${T}/update`, {
      state: { desired: { level: { brightness: 20 }, modes: ['a', 'b'] } },
    });
    const g = await request(app, `${T}/get`, { clientToken: 'g1' });
    expect(g.topic).toBe(`${T}/get/accepted`);
    expect(g.body.state).toEqual({
      desired: { color: 'red', level: { brightness: 20 }, modes: ['a', 'b'] },
      reported: { color: 'red', level: { brightness: 80 } },
      delta: { level: { brightness: 20 }, modes: ['a', 'b'] },
    });
    expect(g.body.version).toBe(3);
    expect(g.body.clientToken).toBe('g1');
    expect(g.body.metadata.desired.modes).toEqual({ timestamp: expect.any(Number) });
    expect(g.body.metadata.reported.level.brightness).toEqual({ timestamp: expect.any(Number) });
  });

  test('null removes a field, arrays replace whole, an emptied object disappears', async () => {
    await request(app, `${T}/update`, { state: { desired: { modes: ['c'], level: { brightness: null } } } });
    const g = await request(app, `${T}/get`, {});
    expect(g.body.state.desired).toEqual({ color: 'red', modes: ['c'] });
    expect(g.body.metadata.desired.level).toBeUndefined();
    await request(app, `${T}/update`, { state: { desired: null } });
    const g2 = await request(app, `${T}/get`, {});
    expect(g2.body.state.desired).toBeUndefined();
    expect(g2.body.state.delta).toBeUndefined();
    expect(g2.body.version).toBe(5);
  });

  test('a stale version gets 409 Version conflict with the token; the document is unchanged', async () => {
    const r = await request(app, `${T}/update`, {
      state: { reported: { color: 'blue' } },
      version: 1,
      clientToken: 'stale',
    });
    expect(r.topic).toBe(`${T}/update/rejected`);
    expect(r.body).toEqual({
      code: 409,
      message: 'Version conflict',
      timestamp: expect.any(Number),
      clientToken: 'stale',
    });
    const ok = await request(app, `${T}/update`, { state: { reported: { color: 'blue' } }, version: 5 });
    expect(ok.body.version).toBe(6);
  });

  test.each([
    ['not JSON', '{"state":', 400, 'Invalid JSON'],
    ['no state', { version: 1 }, 400, 'Missing required node: state'],
    ['state not an object', { state: 5 }, 400, 'State node must be an object'],
    ['desired not an object', { state: { desired: [1] } }, 400, 'Desired node must be an object'],
    ['reported not an object', { state: { reported: 'x' } }, 400, 'Reported node must be an object'],
    ['unknown state node', { state: { delta: {} } }, 400, 'State contains an invalid node'],
    ['null inside an array', { state: { desired: { a: [1, null] } } }, 400, 'State contains an invalid node'],
    ['bad version', { state: {}, version: 'x' }, 400, 'Invalid version'],
    ['long clientToken', { state: {}, clientToken: 'x'.repeat(65) }, 400, 'Invalid clientToken'],
    [
      'seven levels',
      { state: { desired: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } } },
      400,
      'JSON contains too many levels of nesting; maximum is 6',
    ],
    [
      'over 8 KB',
      { state: { reported: { big: 'x'.repeat(9000) } } },
      413,
      'The payload exceeds the maximum size allowed',
    ],
  ])('rejects %s', async (_what, body, code, message) => {
    const r = await request(app, `${T}/update`, body);
    expect(r.topic).toBe(`${T}/update/rejected`);
    expect(r.body.code).toBe(code);
    expect(r.body.message).toBe(message);
  });

  test('delete keeps the version: accepted carries it, get is 404, the next update continues the numbering', async () => {
    const g = await request(app, `${T}/get`, {});
    const v = g.body.version;
    const d = await request(app, `${T}/delete`, { clientToken: 'del' });
    expect(d.body).toEqual({ version: v, timestamp: expect.any(Number), clientToken: 'del' });
    const missing = await request(app, `${T}/get`, { clientToken: 'm' });
    expect(missing.topic).toBe(`${T}/get/rejected`);
    expect(missing.body).toEqual({
      code: 404,
      message: 'No shadow exists with name: lamp',
      timestamp: expect.any(Number),
      clientToken: 'm',
    });
    const again = await request(app, `${T}/delete`, {});
    expect(again.body.code).toBe(404);
    const u = await request(app, `${T}/update`, { state: { reported: { on: true } } });
    expect(u.body.version).toBe(v + 1);
    const g2 = await request(app, `${T}/get`, {});
    expect(g2.body.state).toEqual({ reported: { on: true } });
  });
});

test('named shadows are separate documents with their own versions', async () => {
  const app = await connect('named-app');
  const N = '$aws/things/pump/shadow/name/config';
  await app.c.subscribeAsync(['$aws/things/pump/shadow/#'], { qos: 1 });
  const a = await request(app, `${N}/update`, { state: { desired: { rpm: 1200 } } });
  expect(a.body.version).toBe(1);
  const delta = await waitFor(() => app.got.find((m) => m.topic === `${N}/update/delta`));
  expect(delta.body.state).toEqual({ rpm: 1200 });
  const classic = await request(app, '$aws/things/pump/shadow/get', {});
  expect(classic.body.code).toBe(404);
  expect(classic.body.message).toBe('No shadow exists with name: pump');
  const missing = await request(app, '$aws/things/pump/shadow/name/other/get', {});
  expect(missing.body.message).toBe('No shadow exists with name: other');
});

test('an offline device reconnects to its persistent session and receives the current delta', async () => {
  const D = '$aws/things/heater/shadow';
  const dev = await connect('heater', { clean: false, properties: { sessionExpiryInterval: 3600 } });
  await dev.c.subscribeAsync(`${D}/update/delta`, { qos: 1 });
  await dev.c.endAsync();
  const app = await connect('heater-app');
  await app.c.subscribeAsync(`${D}/update/+`, { qos: 1 });
  await request(app, `${D}/update`, { state: { desired: { target: 21 } } });
  const back = await connect('heater', { clean: false, properties: { sessionExpiryInterval: 3600 } });
  const delta = await waitFor(
    () => back.got.find((m) => m.topic === `${D}/update/delta`),
    5000,
    'queued delta',
  );
  expect(delta.body.state).toEqual({ target: 21 });
  expect(delta.body.version).toBe(1);
});

test('get with sinceVersion answers only what changed after it, removals as null (extension)', async () => {
  const S = '$aws/things/meter/shadow';
  const app = await connect('meter-app');
  await app.c.subscribeAsync(`${S}/get/+`, { qos: 1 });
  await app.c.subscribeAsync(`${S}/update/+`, { qos: 1 });
  await request(app, `${S}/update`, { state: { reported: { a: 1, b: { c: 2, d: 3 } } } }); // v1
  await request(app, `${S}/update`, { state: { reported: { b: { c: 5 } } } }); // v2
  await request(app, `${S}/update`, { state: { reported: { a: null }, desired: { x: 1 } } }); // v3
  const g = await request(app, `${S}/get`, { sinceVersion: 1, clientToken: 's' });
  expect(g.body.sinceVersion).toBe(1);
  expect(g.body.version).toBe(3);
  expect(g.body.state).toEqual({ desired: { x: 1 }, reported: { a: null, b: { c: 5 } }, delta: { x: 1 } });
  // The copy held at v1, updated with the answer, is the current document.
  const full = await request(app, `${S}/get`, {});
  expect(full.body.sinceVersion).toBeUndefined();
  expect(full.body.state.reported).toEqual({ b: { c: 5, d: 3 } });
  const same = await request(app, `${S}/get`, { sinceVersion: 3 });
  expect(same.body.state).toEqual({ delta: { x: 1 } });
  const future = await request(app, `${S}/get`, { sinceVersion: 99 });
  expect(future.body.sinceVersion).toBeUndefined();
  expect(future.body.state.reported).toEqual({ b: { c: 5, d: 3 } });
});

test('many updates to one shadow: accepted versions arrive strictly in order', async () => {
  const S = '$aws/things/counter/shadow';
  const app = await connect('counter-app');
  await app.c.subscribeAsync(`${S}/update/accepted`, { qos: 1 });
  const n = 8; // below the in-flight limit of 10 per connection
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      app.c.publishAsync(`${S}/update`, JSON.stringify({ state: { reported: { i } } }), { qos: 1 }),
    ),
  );
  await waitFor(() => app.got.filter((m) => m.topic === `${S}/update/accepted`).length >= n);
  const versions = app.got.filter((m) => m.topic === `${S}/update/accepted`).map((m) => m.body.version);
  expect(versions).toEqual(Array.from({ length: n }, (_, i) => i + 1));
});

test('shadows survive a restart (same data directory)', async () => {
  const app = await connect('persist-app');
  const S = '$aws/things/keeper/shadow';
  await app.c.subscribeAsync(`${S}/get/+`, { qos: 1 });
  await app.c.subscribeAsync(`${S}/update/+`, { qos: 1 });
  await request(app, `${S}/update`, { state: { desired: { mode: 'eco' }, reported: { mode: 'eco' } } });
  await request(app, `${S}/update`, { state: { desired: { mode: 'boost' } } });
  const dataDir = p.endpoints.dataDir;
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  await p.close();
  p = await startTestPlatform({ shadow: { maxUpdatesPerSecondPerThing: 0 } }, { dataDir });
  const again = await connect('persist-app-2');
  await again.c.subscribeAsync(`${S}/get/+`, { qos: 1 });
  const g = await request(again, `${S}/get`, {});
  expect(g.body.version).toBe(2);
  expect(g.body.state).toEqual({
    desired: { mode: 'boost' },
    reported: { mode: 'eco' },
    delta: { mode: 'boost' },
  });
});
