import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { iot, iotshadow, mqtt, mqtt5, type mqtt_request_response } from 'aws-iot-device-sdk-v2';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The AWS IoT Device SDK v2 for JavaScript (`aws-iot-device-sdk-v2`, native aws-crt) drives Thingstead's
 * shadows (issue 10, reference §8.2) as a device made by `thingstead onboard` would: its certificate,
 * mutual TLS on the MQTT TLS port, and nothing but the starter policies onboard attaches (reference §9.6).
 * The request-response client (IotShadowClientv2, over MQTT 5) matches every answer by the clientToken it
 * generates on `get/+`, `delete/+` and `update/accepted|rejected`; its delta and documents streams; the
 * older IotShadowClient (MQTT 3.1.1) subscribes to each accepted/rejected topic itself. Every answer is
 * parsed by the SDK (Date timestamps, versions, state, modeled errors), and what the SDK sent is read off
 * the broker. Another thing's shadow is out of its reach.
 */

const THING = 'sdk-shadow';
const PREFIX = `$aws/things/${THING}/shadow`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const run = promisify(execFile);

let p: TestPlatform;
let creds: { cert: string; key: string; ca: string };
/** Every message routed on the device's and the other thing's shadow topics (requests and answers). */
const routed: { topic: string; body: any }[] = [];

beforeAll(async () => {
  p = await startTestPlatform({
    mqtt: { allowAnonymous: false },
    shadow: { maxUpdatesPerSecondPerThing: 0 },
  });
  p.broker.subscribeInternal('$aws/things/#', (m) => {
    const text = m.payload.toString();
    routed.push({ topic: m.topic, body: text ? JSON.parse(text) : null });
  });
  // The real CLI, as a user runs it: thing, certificate, starter policies, files.
  const out = mkdtempSync(join(tmpdir(), 'shadow-sdk-'));
  const r = await run(
    process.execPath,
    [
      ...['--import', 'tsx', 'src/cli/main.ts', 'onboard', THING, '--out', out, '--json'],
      ...['--data-dir', p.endpoints.dataDir],
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: out }, timeout: 60_000 },
  );
  const files = JSON.parse(r.stdout).files as Record<'certificate' | 'privateKey' | 'ca', string>;
  creds = {
    cert: readFileSync(files.certificate, 'utf8'),
    key: readFileSync(files.privateKey, 'utf8'),
    ca: readFileSync(files.ca, 'utf8'),
  };
  // Another thing's shadow, written by the platform.
  await p.shadows.service.update('other-thing', '', { desired: { secret: 1 } });
}, 90_000);
afterAll(async () => {
  await p?.stop();
});

/** The request the SDK published on `topic` carrying `clientToken`, as the broker routed it. */
const sent = (topic: string, clientToken: string | undefined) =>
  waitFor(
    () => routed.find((m) => m.topic === topic && m.body?.clientToken === clientToken),
    5000,
    `the SDK's ${topic}`,
  );

/** A ServiceError's modeled error document (the SDK's parse of `/rejected`). */
async function rejection(promise: Promise<unknown>): Promise<iotshadow.model.V2ErrorResponse> {
  try {
    await promise;
  } catch (err) {
    const modeled = (err as mqtt_request_response.ServiceError).modeledError;
    if (!modeled) throw err;
    return modeled as iotshadow.model.V2ErrorResponse;
  }
  throw new Error('the request was accepted but should have been rejected');
}

/** Resolve once a streaming operation's subscription is established (reject when it is halted). */
function established<T>(stream: mqtt_request_response.StreamingOperation<T>): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on('subscriptionStatus', (e) => {
      const type = Number(e.type);
      if (type === 0 /* SubscriptionEstablished */) resolve();
      else if (type === 2 /* SubscriptionHalted */)
        reject(new Error(`subscription halted: ${JSON.stringify(e.error)}`));
    });
    stream.open();
  });
}

describe('IotShadowClientv2 over MQTT 5 with the onboarded certificate', () => {
  let client: mqtt5.Mqtt5Client;
  let shadow: iotshadow.IotShadowClientv2;
  const deltas: iotshadow.model.ShadowDeltaUpdatedEvent[] = [];
  const documents: iotshadow.model.ShadowUpdatedEvent[] = [];

  beforeAll(async () => {
    const config = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromMemory(
      'localhost',
      creds.cert,
      creds.key,
    )
      .withCertificateAuthority(creds.ca)
      .withPort(p.endpoints.mqttsPort!)
      .withConnectProperties({ clientId: THING, keepAliveIntervalSeconds: 60 })
      .build();
    client = new mqtt5.Mqtt5Client(config);
    const connected = new Promise<void>((resolve, reject) => {
      client.once('connectionSuccess', () => resolve());
      client.once('connectionFailure', (e) => reject(new Error(`connect failed: ${e.error.toString()}`)));
    });
    client.start();
    await connected;
    shadow = iotshadow.IotShadowClientv2.newFromMqtt5(client, {
      maxRequestResponseSubscriptions: 6,
      maxStreamingSubscriptions: 4,
      operationTimeoutInSeconds: 10,
    });
    const delta = shadow.createShadowDeltaUpdatedStream({ thingName: THING });
    delta.on('incomingPublish', (e) => deltas.push(e.message));
    const updated = shadow.createShadowUpdatedStream({ thingName: THING });
    updated.on('incomingPublish', (e) => documents.push(e.message));
    await Promise.all([established(delta), established(updated)]);
  }, 30_000);
  afterAll(async () => {
    shadow?.close();
    if (!client) return;
    const stopped = new Promise((resolve) => client.once('stopped', resolve));
    client.stop();
    await stopped;
    client.close();
  });

  test('UpdateShadow desired: accepted parsed, clientToken matched; delta and documents streams', async () => {
    const before = Math.floor(Date.now() / 1000);
    const request: iotshadow.model.UpdateShadowRequest = {
      thingName: THING,
      state: { desired: { color: 'red', level: { brightness: 80 } } },
    };
    const r = await shadow.updateShadow(request);
    // The SDK put a fresh UUID into the request and matched the answer by it.
    expect(request.clientToken).toMatch(UUID);
    expect(r.clientToken).toBe(request.clientToken);
    expect(r.version).toBe(1);
    expect(r.state).toEqual({ desired: { color: 'red', level: { brightness: 80 } } });
    // The model types timestamps as Date, but the JS SDK hands on the JSON number: epoch seconds.
    const t = r.timestamp as unknown as number;
    expect(Number.isInteger(t)).toBe(true);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThan(before + 5);
    expect(r.metadata).toEqual({
      desired: { color: { timestamp: t }, level: { brightness: { timestamp: t } } },
    });
    // What the SDK sent (reference §8.2: `{"state": ..., "clientToken": ...}`, no version when none given).
    const req = await sent(`${PREFIX}/update`, request.clientToken);
    expect(req.body).toEqual({ clientToken: request.clientToken, state: request.state });

    await waitFor(() => deltas.length === 1 && documents.length === 1, 5000, 'delta and documents');
    expect(deltas[0]).toEqual({
      state: { color: 'red', level: { brightness: 80 } },
      metadata: { color: { timestamp: t }, level: { brightness: { timestamp: t } } },
      version: 1,
      timestamp: r.timestamp,
      clientToken: request.clientToken,
    });
    expect(documents[0]!.previous).toBeUndefined();
    expect(documents[0]!.current).toEqual({
      state: { desired: { color: 'red', level: { brightness: 80 } } },
      metadata: r.metadata,
      version: 1,
    });
    expect(documents[0]!.timestamp).toEqual(r.timestamp);
  });

  test('report and GetShadow: desired, reported and delta as the SDK parses them', async () => {
    const report = await shadow.updateShadow({
      thingName: THING,
      state: { reported: { color: 'red', level: { brightness: 80 } } },
    });
    expect(report.version).toBe(2);
    await waitFor(() => documents.length === 2, 5000, 'documents v2');
    expect(documents[1]!.previous?.version).toBe(1);
    expect(documents[1]!.current?.version).toBe(2);
    expect(deltas).toHaveLength(1); // reported caught up: no delta

    await shadow.updateShadow({ thingName: THING, state: { desired: { color: 'blue' } } });
    await waitFor(() => deltas.length === 2, 5000, 'delta v3');
    expect(deltas[1]!.state).toEqual({ color: 'blue' }); // the whole delta, not just this update
    expect(deltas[1]!.version).toBe(3);

    const request: iotshadow.model.GetShadowRequest = { thingName: THING };
    const g = await shadow.getShadow(request);
    expect(g.clientToken).toBe(request.clientToken);
    expect(g.clientToken).toMatch(UUID);
    expect(g.version).toBe(3);
    expect(g.state).toEqual({
      desired: { color: 'blue', level: { brightness: 80 } },
      reported: { color: 'red', level: { brightness: 80 } },
      delta: { color: 'blue' },
    });
    expect(g.metadata?.desired).toMatchObject({ color: { timestamp: expect.any(Number) } });
    expect(g.metadata?.reported).toMatchObject({ level: { brightness: { timestamp: expect.any(Number) } } });
    expect(Number.isInteger(g.timestamp)).toBe(true);
    const req = await sent(`${PREFIX}/get`, request.clientToken);
    expect(req.body).toEqual({ clientToken: request.clientToken });
  });

  test('a stale version is rejected 409; the SDK hands back the modeled error with its clientToken', async () => {
    const request: iotshadow.model.UpdateShadowRequest = {
      thingName: THING,
      state: { reported: { color: 'blue' } },
      version: 1,
    };
    const e = await rejection(shadow.updateShadow(request));
    expect(e.code).toBe(409);
    expect(e.message).toBe('Version conflict');
    expect(e.clientToken).toBe(request.clientToken);
    expect(Number.isInteger(e.timestamp)).toBe(true);
    expect((await sent(`${PREFIX}/update`, request.clientToken)).body.version).toBe(1);
    expect((await shadow.getShadow({ thingName: THING })).version).toBe(3); // nothing written
  });

  test('DeleteShadow keeps the version; GetShadow is then 404; the next update continues the numbering', async () => {
    const request: iotshadow.model.DeleteShadowRequest = { thingName: THING };
    const d = await shadow.deleteShadow(request);
    expect(d.clientToken).toBe(request.clientToken);
    expect(d.version).toBe(3);
    expect(Number.isInteger(d.timestamp)).toBe(true);
    expect((await sent(`${PREFIX}/delete`, request.clientToken)).body).toEqual({
      clientToken: request.clientToken,
    });

    const missing = await rejection(shadow.getShadow({ thingName: THING }));
    expect(missing.code).toBe(404);
    expect(missing.message).toMatch(/^No shadow exists with name: /);
    expect(missing.clientToken).toMatch(UUID);

    const again = await shadow.updateShadow({ thingName: THING, state: { reported: { on: true } } });
    expect(again.version).toBe(4);
  });

  test('named shadow: UpdateNamedShadow, its delta stream, GetNamedShadow, DeleteNamedShadow', async () => {
    const named: iotshadow.model.ShadowDeltaUpdatedEvent[] = [];
    const stream = shadow.createNamedShadowDeltaUpdatedStream({ thingName: THING, shadowName: 'config' });
    stream.on('incomingPublish', (e) => named.push(e.message));
    await established(stream);

    const update: iotshadow.model.UpdateNamedShadowRequest = {
      thingName: THING,
      shadowName: 'config',
      state: { desired: { interval: 30 }, reported: { interval: 60 } },
    };
    const u = await shadow.updateNamedShadow(update);
    expect(u.clientToken).toBe(update.clientToken);
    expect(u.version).toBe(1);
    expect(u.state).toEqual({ desired: { interval: 30 }, reported: { interval: 60 } });
    expect((await sent(`${PREFIX}/name/config/update`, update.clientToken)).body.state.desired).toEqual({
      interval: 30,
    });
    await waitFor(() => named.length === 1, 5000, 'named delta');
    expect(named[0]).toMatchObject({ state: { interval: 30 }, version: 1, clientToken: update.clientToken });

    const get: iotshadow.model.GetNamedShadowRequest = { thingName: THING, shadowName: 'config' };
    const g = await shadow.getNamedShadow(get);
    expect(g.clientToken).toBe(get.clientToken);
    expect(g.state).toEqual({
      desired: { interval: 30 },
      reported: { interval: 60 },
      delta: { interval: 30 },
    });
    // The classic shadow (recreated by the previous test) is another document.
    expect((await shadow.getShadow({ thingName: THING })).state).toEqual({ reported: { on: true } });

    const del: iotshadow.model.DeleteNamedShadowRequest = { thingName: THING, shadowName: 'config' };
    const d = await shadow.deleteNamedShadow(del);
    expect(d).toMatchObject({ clientToken: del.clientToken, version: 1 });
    const gone = await rejection(shadow.getNamedShadow({ thingName: THING, shadowName: 'config' }));
    expect(gone).toMatchObject({ code: 404, message: 'No shadow exists with name: config' });
    stream.close();
  });

  test("another thing's shadow: the SDK's subscriptions are refused, so it can neither read nor write it", async () => {
    const from = routed.length;
    const get = shadow.getShadow({ thingName: 'other-thing' });
    await expect(get).rejects.toThrow();
    const update = shadow.updateShadow({ thingName: 'other-thing', state: { desired: { secret: 2 } } });
    await expect(update).rejects.toThrow();
    // The SDK never published (it waits for its SUBACK); the shadow is as the platform left it.
    expect(routed.slice(from).filter((m) => m.topic.startsWith('$aws/things/other-thing/'))).toEqual([]);
    expect(await p.shadows.service.get('other-thing', '')).toMatchObject({
      version: 1,
      state: { desired: { secret: 1 } },
    });
  });
});

describe('IotShadowClient (MQTT 3.1.1) with the same certificate', () => {
  test('subscribe accepted/rejected, publish update and get; answers parsed; the other thing refused', async () => {
    const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(creds.cert, creds.key)
      .with_certificate_authority(creds.ca)
      .with_endpoint('localhost')
      .with_port(p.endpoints.mqttsPort!)
      .with_client_id(THING)
      .with_clean_session(true)
      .build();
    const connection = new mqtt.MqttClient().new_connection(config);
    await connection.connect();
    try {
      const shadow = new iotshadow.IotShadowClient(connection);
      const got: { topic: string; value: unknown }[] = [];
      const on =
        (topic: string) =>
        (error?: iotshadow.IotShadowError, value?: unknown): void => {
          got.push({ topic, value: error ?? value });
        };
      const QOS = mqtt.QoS.AtLeastOnce;
      const req = { thingName: THING };
      await shadow.subscribeToUpdateShadowAccepted(req, QOS, on('update/accepted'));
      await shadow.subscribeToUpdateShadowRejected(req, QOS, on('update/rejected'));
      await shadow.subscribeToGetShadowAccepted(req, QOS, on('get/accepted'));
      await shadow.subscribeToGetShadowRejected(req, QOS, on('get/rejected'));
      await shadow.subscribeToShadowDeltaUpdatedEvents(req, QOS, on('update/delta'));

      await shadow.publishUpdateShadow(
        { thingName: THING, state: { desired: { mode: 'eco' } }, clientToken: 'v1-update' },
        QOS,
      );
      const accepted = await waitFor(() => got.find((g) => g.topic === 'update/accepted'));
      expect(accepted.value).toMatchObject({
        clientToken: 'v1-update',
        version: 5,
        state: { desired: { mode: 'eco' } },
        timestamp: expect.any(Number),
      });
      const delta = await waitFor(() => got.find((g) => g.topic === 'update/delta'));
      expect(delta.value).toMatchObject({ state: { mode: 'eco' }, version: 5, clientToken: 'v1-update' });

      await shadow.publishUpdateShadow(
        { thingName: THING, state: { reported: { mode: 'eco' } }, version: 1, clientToken: 'v1-stale' },
        QOS,
      );
      const rejected = await waitFor(() => got.find((g) => g.topic === 'update/rejected'));
      expect(rejected.value).toMatchObject({
        code: 409,
        message: 'Version conflict',
        clientToken: 'v1-stale',
      });

      await shadow.publishGetShadow({ thingName: THING, clientToken: 'v1-get' }, QOS);
      const g = await waitFor(() => got.find((m) => m.topic === 'get/accepted'));
      expect(g.value).toMatchObject({
        clientToken: 'v1-get',
        version: 5,
        state: { desired: { mode: 'eco' }, reported: { on: true }, delta: { mode: 'eco' } },
      });

      // Another thing: the SUBACK refuses it (MQTT 3.1.1 return code 0x80, which the SDK reports as qos).
      const refused = await shadow.subscribeToGetShadowAccepted(
        { thingName: 'other-thing' },
        QOS,
        on('other'),
      );
      expect(refused.qos).toBe(128);
      const own = await shadow.subscribeToDeleteShadowAccepted(req, QOS, on('delete/accepted'));
      expect(own.qos).toBe(QOS);
    } finally {
      await connection.disconnect();
    }
  }, 30_000);
});
