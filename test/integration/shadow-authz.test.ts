import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoTClient } from '@aws-sdk/client-iot';
import {
  DeleteThingShadowCommand,
  GetThingShadowCommand,
  IoTDataPlaneClient,
  ListNamedShadowsForThingCommand,
  PublishCommand,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onboard } from '../../src/cli/onboard.js';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { connectTls, createDevice, flush, subscribeCodes, type Device } from './security-helpers.js';

/**
 * A device cannot read or change another thing's shadow by any path (issue 10; reference §8.2
 * "Authorization", §9.2, §9.3). Devices are made by `onboard` (its starter policies); the other thing's
 * shadows are written by the platform and must be exactly as they were after every attempt:
 * - MQTT: publishing another thing's shadow request is refused (v5 PUBACK 0x87, 3.1.1 disconnect);
 *   subscribing to its shadow topics is refused (SUBACK 0x87);
 * - iot:Receive: a careless policy that allows subscribing to `$aws/things/+/shadow/#` still delivers only the
 *   device's own shadow messages when Receive is scoped to them;
 * - the SigV4 data plane: a read-only access key may GetThingShadow but not Update/Delete (403
 *   AccessDeniedException), nor Publish to a shadow request topic;
 * - the device HTTPS plane (mutual TLS): the shadow routes authorize iot:Get/Update/DeleteThingShadow on
 *   `thing/{thing}[/{shadow}]`: its own thing 200, another thing 403 ForbiddenException; publishing to
 *   another thing's shadow topic there is refused too.
 */

interface Creds {
  readonly certPem: string;
  readonly keyPem: string;
}

let p: TestPlatform;
let admin: { accessKeyId: string; secretAccessKey: string };
let iot: IoTClient;
let A: Creds;
let B: Creds;
const ARN = () => `arn:aws:iot:${p.config.region}:${p.config.accountId}`;
/** Everything the broker routed on dev-b's topics after the setup. */
const bRouted: string[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  p = await startTestPlatform({
    mqtt: { allowAnonymous: false },
    deviceHttps: { port: 0 },
    shadow: { maxUpdatesPerSecondPerThing: 0 },
  });
  admin = await p.credentials.create('authz-admin', 'admin');
  iot = new IoTClient({
    endpoint: p.endpoints.http,
    region: p.config.region,
    credentials: admin,
    maxAttempts: 1,
  });
  const conn = { endpoint: p.endpoints.http, region: p.config.region, ...admin };
  const out = mkdtempSync(join(tmpdir(), 'shadow-authz-'));
  const device = async (thingName: string): Promise<Creds> => {
    const r = await onboard(conn, {
      thingName,
      outDir: join(out, thingName),
      host: '127.0.0.1',
      port: p.endpoints.mqttsPort,
      caPem: p.tls.caPem,
    });
    return {
      certPem: readFileSync(r.files.certificate, 'utf8'),
      keyPem: readFileSync(r.files.privateKey, 'utf8'),
    };
  };
  A = await device('dev-a');
  B = await device('dev-b');
  await p.shadows.service.update('dev-b', '', { desired: { secret: 1 } });
  await p.shadows.service.update('dev-b', 'cfg', { desired: { interval: 5 } });
  await p.shadows.service.update('dev-a', '', { reported: { mine: true } });
  p.broker.subscribeInternal('$aws/things/dev-b/#', (m) => bRouted.push(m.topic));
}, 60_000);
afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  await p?.stop();
});

/** dev-b's shadows are exactly as the setup left them, and nothing was routed on its topics. */
async function bUntouched(): Promise<void> {
  expect(await p.shadows.service.get('dev-b', '')).toMatchObject({
    version: 1,
    state: { desired: { secret: 1 } },
  });
  expect(await p.shadows.service.get('dev-b', 'cfg')).toMatchObject({
    version: 1,
    state: { desired: { interval: 5 } },
  });
  expect(bRouted).toEqual([]);
}

async function connect(creds: Creds, clientId: string, protocolVersion: 4 | 5 = 5) {
  const c = await connectTls(p, creds, clientId, { protocolVersion });
  clients.push(c);
  return c;
}

/** PUBACK reason code of a QoS 1 publish of `body` (MQTT 5). */
async function pubackCode(c: MqttClient, topic: string, body: unknown): Promise<number> {
  try {
    const packet = await c.publishAsync(topic, JSON.stringify(body), { qos: 1 });
    return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

describe('MQTT', () => {
  it("publishing another thing's shadow requests is refused with PUBACK 0x87 and writes nothing", async () => {
    const a = await connect(A, 'dev-a');
    const got: { topic: string; body: any }[] = [];
    a.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
    await a.subscribeAsync('$aws/things/dev-a/shadow/update/accepted', { qos: 1 });
    const update = { state: { desired: { secret: 2 } }, clientToken: 'steal' };
    for (const topic of [
      '$aws/things/dev-b/shadow/update',
      '$aws/things/dev-b/shadow/delete',
      '$aws/things/dev-b/shadow/get',
      '$aws/things/dev-b/shadow/name/cfg/update',
      '$aws/things/dev-b/shadow/name/cfg/delete',
      '$aws/things/dev-b/shadow/name/new/update',
    ])
      expect(await pubackCode(a, topic, update), topic).toBe(0x87);
    // Its own shadow, on the same connection: accepted (the refusals above were about dev-b, not shadows).
    expect(await pubackCode(a, '$aws/things/dev-a/shadow/update', update)).toBe(0);
    await waitFor(() => got.find((m) => m.body.clientToken === 'steal'), 5000, 'own update accepted');
    expect(got[0]!.body.version).toBe(2);
    await bUntouched();
  });

  it("a device cannot forge the service's answers, not even on its own shadow topics (0x87, nothing delivered)", async () => {
    // One connection both listens and forges (its policy allows only client id dev-a).
    const a = await connect(A, 'dev-a');
    const listener = a;
    const got: string[] = [];
    listener.on('message', (topic) => got.push(topic));
    const own = [
      '$aws/things/dev-a/shadow/update/accepted',
      '$aws/things/dev-a/shadow/update/delta',
      '$aws/things/dev-a/shadow/get/accepted',
      '$aws/things/dev-a/shadow/name/forge/update/delta',
    ];
    expect(await subscribeCodes(listener, own)).toEqual(own.map(() => 0));
    const forged = { state: { desired: { unlock: true } }, version: 99, timestamp: 1 };
    for (const topic of own) expect(await pubackCode(a, topic, forged), topic).toBe(0x87);
    // A real update on the same shadow still reaches the listener, so the silence above is the refusal.
    await p.shadows.service.update('dev-a', 'forge', { desired: { interval: 7 } });
    await waitFor(() => got.includes('$aws/things/dev-a/shadow/name/forge/update/delta'), 5000, 'real delta');
    expect(got).toEqual(['$aws/things/dev-a/shadow/name/forge/update/delta']);
    await bUntouched();
  });

  it('MQTT 3.1.1 has no PUBACK refusal: the connection is closed and nothing is written', async () => {
    const a = await connect(A, 'dev-a', 4);
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.publish('$aws/things/dev-b/shadow/update', JSON.stringify({ state: { desired: { secret: 3 } } }), {
      qos: 1,
    });
    await closed;
    await bUntouched();
  });

  it("subscribing to another thing's shadow topics is refused with SUBACK 0x87, filter by filter", async () => {
    const a = await connect(A, 'dev-a');
    const others = [
      '$aws/things/dev-b/shadow/#',
      '$aws/things/dev-b/shadow/get/+',
      '$aws/things/dev-b/shadow/update/delta',
      '$aws/things/dev-b/shadow/name/cfg/update/documents',
      '$aws/things/+/shadow/update/delta',
      '$aws/things/#',
    ];
    const own = ['$aws/things/dev-a/shadow/get/+', '$aws/things/dev-a/shadow/name/cfg/update/delta'];
    expect(await subscribeCodes(a, [...others, ...own])).toEqual([...others.map(() => 0x87), 0, 0]);
    // Not even its own whole shadow subtree: only the filters the Device SDK uses.
    expect(await subscribeCodes(a, ['$aws/things/dev-a/shadow/#'])).toEqual([0x87]);
  });

  it("a careless wildcard subscription delivers only the device's own shadow messages when Receive is scoped", async () => {
    const thing = '${iot:Connection.Thing.ThingName}';
    const careless: Device = await createDevice(iot, 'careless', {
      name: 'careless-policy',
      statements: [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN()}:client/${thing}` },
        { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN()}:topicfilter/$aws/things/*` },
        {
          Effect: 'Allow',
          Action: ['iot:Publish', 'iot:Receive'],
          Resource: `${ARN()}:topic/$aws/things/${thing}/shadow/*`,
        },
      ],
    });
    const c = await connect(careless, 'careless');
    const got: string[] = [];
    c.on('message', (topic) => got.push(topic));
    expect(await subscribeCodes(c, ['$aws/things/+/shadow/#'])).toEqual([0]);
    const droppedBefore = await scrapeMetric(
      p,
      'thingstead_mqtt_messages_dropped_total',
      /not_authorized_receive/,
    );

    // Another thing's shadow changes (dev-x, so dev-b's record stays clean); then the device's own.
    const seen: string[] = [];
    const stop = p.broker.subscribeInternal('$aws/things/dev-x/shadow/#', (m) => seen.push(m.topic));
    await p.shadows.service.update('dev-x', '', { desired: { secret: 9 } });
    await waitFor(() => seen.includes('$aws/things/dev-x/shadow/update/documents'), 5000, 'dev-x documents');
    stop();
    expect(
      await pubackCode(c, '$aws/things/careless/shadow/update', { state: { reported: { ok: 1 } } }),
    ).toBe(0);
    await waitFor(() => got.includes('$aws/things/careless/shadow/update/documents'), 5000, 'own documents');
    await flush(p, got, '$aws/things/careless/shadow/marker');

    expect(got.filter((t) => !t.startsWith('$aws/things/careless/'))).toEqual([]);
    expect(got).toContain('$aws/things/careless/shadow/update/accepted');
    // dev-x's accepted, delta and documents were matched and refused at delivery.
    const dropped = await scrapeMetric(p, 'thingstead_mqtt_messages_dropped_total', /not_authorized_receive/);
    expect(dropped - droppedBefore).toBeGreaterThanOrEqual(3);
  });
});

describe('SigV4 HTTP data plane', () => {
  it('a read-only key may GetThingShadow, but UpdateThingShadow and DeleteThingShadow are AccessDeniedException', async () => {
    const ro = await p.credentials.create('authz-reader', 'read-only');
    const data = new IoTDataPlaneClient({
      endpoint: p.endpoints.http,
      region: p.config.region,
      credentials: ro,
      maxAttempts: 1,
    });
    const got = await data.send(new GetThingShadowCommand({ thingName: 'dev-b' }));
    expect(JSON.parse(Buffer.from(got.payload!).toString())).toMatchObject({
      state: { desired: { secret: 1 }, delta: { secret: 1 } },
      version: 1,
    });
    const named = await data.send(new ListNamedShadowsForThingCommand({ thingName: 'dev-b' }));
    expect(named.results).toEqual(['cfg']);

    const denied = async (send: () => Promise<unknown>) => {
      const err = await send().then(
        () => null,
        (e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } },
      );
      expect(err?.name).toBe('AccessDeniedException');
      expect(err?.$metadata.httpStatusCode).toBe(403);
    };
    const payload = Buffer.from(JSON.stringify({ state: { desired: { secret: 4 } } }));
    await denied(() => data.send(new UpdateThingShadowCommand({ thingName: 'dev-b', payload })));
    await denied(() =>
      data.send(new UpdateThingShadowCommand({ thingName: 'dev-b', shadowName: 'cfg', payload })),
    );
    await denied(() => data.send(new DeleteThingShadowCommand({ thingName: 'dev-b' })));
    await denied(() => data.send(new DeleteThingShadowCommand({ thingName: 'dev-b', shadowName: 'cfg' })));
    await denied(() =>
      data.send(new PublishCommand({ topic: '$aws/things/dev-b/shadow/update', qos: 1, payload })),
    );
    await bUntouched();

    // The same call with the admin key is accepted (on dev-a, so dev-b stays as it was).
    const rw = new IoTDataPlaneClient({
      endpoint: p.endpoints.http,
      region: p.config.region,
      credentials: admin,
      maxAttempts: 1,
    });
    const ok = await rw.send(new UpdateThingShadowCommand({ thingName: 'dev-a', payload }));
    expect(JSON.parse(Buffer.from(ok.payload!).toString()).state).toEqual({ desired: { secret: 4 } });
  });
});

describe('device HTTPS plane (mutual TLS)', () => {
  function call(creds: Creds, method: string, path: string, body = '') {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: p.endpoints.deviceHttpsPort!,
          method,
          path,
          ca: p.tls.caPem,
          cert: creds.certPem,
          key: creds.keyPem,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text ? JSON.parse(text) : null,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('its own shadows: GET, POST and DELETE, classic and named, as the data plane answers them', async () => {
    const before = await call(A, 'GET', '/things/dev-a/shadow');
    expect(before.status).toBe(200);
    expect(before.headers['content-type']).toBe('application/json');
    const version = before.body.version as number;
    expect(before.body.state.reported).toEqual({ mine: true });

    const docs: string[] = [];
    const stop = p.broker.subscribeInternal('$aws/things/dev-a/shadow/#', (m) => docs.push(m.topic));
    const up = await call(
      A,
      'POST',
      '/things/dev-a/shadow',
      JSON.stringify({ state: { reported: { via: 'https' } }, clientToken: 'h1' }),
    );
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({
      state: { reported: { via: 'https' } },
      version: version + 1,
      clientToken: 'h1',
    });
    // The HTTPS update is a shadow update like any other: MQTT subscribers get its documents.
    await waitFor(() => docs.includes('$aws/things/dev-a/shadow/update/documents'), 5000, 'documents');
    stop();

    const named = await call(
      A,
      'POST',
      '/things/dev-a/shadow?name=cfg',
      JSON.stringify({ state: { desired: { interval: 10 } } }),
    );
    expect(named.status).toBe(200);
    expect(named.body.version).toBe(1);
    expect((await call(A, 'GET', '/things/dev-a/shadow?name=cfg')).body.state.desired).toEqual({
      interval: 10,
    });
    const del = await call(A, 'DELETE', '/things/dev-a/shadow?name=cfg');
    expect(del.status).toBe(200);
    expect(del.body.version).toBe(1);
    const gone = await call(A, 'GET', '/things/dev-a/shadow?name=cfg');
    expect(gone.status).toBe(404);
    expect(gone.headers['x-amzn-errortype']).toBe('ResourceNotFoundException');
    expect(gone.body).toMatchObject({ code: 404, message: 'No shadow exists with name: cfg' });

    const bad = await call(A, 'POST', '/things/dev-a/shadow', '{"state":');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 400, message: 'Invalid JSON' });
  });

  it("another thing's shadows: 403 ForbiddenException for every method, classic and named, and nothing changes", async () => {
    const update = JSON.stringify({ state: { desired: { secret: 5 } } });
    for (const [method, path, body] of [
      ['GET', '/things/dev-b/shadow', ''],
      ['POST', '/things/dev-b/shadow', update],
      ['DELETE', '/things/dev-b/shadow', ''],
      ['GET', '/things/dev-b/shadow?name=cfg', ''],
      ['POST', '/things/dev-b/shadow?name=cfg', update],
      ['DELETE', '/things/dev-b/shadow?name=cfg', ''],
    ] as const) {
      const r = await call(A, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.headers['x-amzn-errortype']).toBe('ForbiddenException');
      expect(r.body).toMatchObject({ message: 'Forbidden', code: 403 });
    }
    // dev-b itself may.
    expect((await call(B, 'GET', '/things/dev-b/shadow')).status).toBe(200);
    await bUntouched();
  });

  it('no detour: an encoded thing name or a publish to the shadow topic does not reach another thing', async () => {
    const update = JSON.stringify({ state: { desired: { secret: 6 } } });
    // `dev-a%2F..%2Fdev-b` decodes to a name no thing can have: refused before any store access.
    const encoded = await call(A, 'POST', '/things/dev-a%2F..%2Fdev-b/shadow', update);
    expect(encoded.status).toBe(400);
    const sneaky = await call(A, 'GET', '/things/dev-b/shadow?name=..%2F..%2Fdev-a');
    expect(sneaky.status).toBe(403);
    const published = await call(
      A,
      'POST',
      `/topics/${encodeURIComponent('$aws/things/dev-b/shadow/update')}?qos=1`,
      update,
    );
    expect(published.status).toBe(403);
    await bUntouched();
  });
});
