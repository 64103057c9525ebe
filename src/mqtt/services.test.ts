import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../../test/helpers/platform.js';
import { createLogger } from '../observability/index.js';
import { anonymousLoopbackHooks, isBrokerOwned, type Broker, type ServiceRequest } from './index.js';
import { ServiceTable } from './services.js';

const logger = createLogger('silent');
const publisher = { clientId: 'dev-1', principal: { kind: 'anonymous' as const, id: 'anonymous' } };
const msg = (topic: string, from: typeof publisher | null = publisher) => ({
  topic,
  payload: Buffer.from('{}'),
  qos: 0 as const,
  retain: false,
  properties: undefined,
  publisher: from,
});

describe('service table: matching', () => {
  const table = new ServiceTable({ logger });
  const names = (topic: string, from: typeof publisher | null = publisher) =>
    (table.match(msg(topic, from)) ?? []).map((r) => r.service.name).sort();
  const handle = () => undefined;
  table.register({
    name: 'shadow',
    filters: [
      '$aws/things/+/shadow/update',
      '$aws/things/+/shadow/get',
      '$aws/things/+/shadow/name/+/update',
    ],
    handle,
  });
  table.register({ name: 'jobs', filters: ['$aws/things/+/jobs/#'], handle });
  table.register({ name: 'audit', filters: ['$aws/things/#', '$aws/things/+/shadow/update'], handle });

  it('finds every service whose filters match, each once, by trie lookup', () => {
    expect(names('$aws/things/t1/shadow/update')).toEqual(['audit', 'shadow']);
    expect(names('$aws/things/t1/shadow/name/s1/update')).toEqual(['audit', 'shadow']);
    expect(names('$aws/things/t1/shadow/update/accepted')).toEqual(['audit']);
    // [MQTT-4.7.1-2] `jobs/#` matches `jobs` itself.
    expect(names('$aws/things/t1/jobs')).toEqual(['audit', 'jobs']);
    expect(names('$aws/things/t1/jobs/get')).toEqual(['audit', 'jobs']);
    expect(names('$aws/things')).toEqual(['audit']);
    expect(names('$aws/thingsX/t1/jobs/get')).toEqual([]);
    expect(names('$aws/certificates/create/json')).toEqual([]);
    expect(names('things/t1/shadow/update')).toEqual([]);
  });

  it('the platform’s own publishes (no publisher) are never requests', () => {
    expect(table.match(msg('$aws/things/t1/shadow/update', null))).toBeNull();
  });

  it('refuses filters outside a $ namespace, inside a broker-owned one, invalid ones and duplicate names', () => {
    const bad = (name: string, filters: string[]) => () => table.register({ name, filters, handle });
    expect(bad('x1', ['things/+/shadow/update'])).toThrow(/reserved/);
    expect(bad('x2', ['+/things/x'])).toThrow(/reserved/);
    expect(bad('x3', ['$aws/events/presence/#'])).toThrow(/broker-owned/);
    expect(bad('x4', ['$aws/+/presence/connected/x'])).toThrow(/broker-owned/);
    expect(bad('x5', ['$aws/things/#/x'])).toThrow(/not a valid filter/);
    expect(bad('x6', [])).toThrow(/no filters/);
    expect(bad('shadow', ['$aws/things/+/shadow/delete'])).toThrow(/already registered/);
  });

  it('unregister takes a service out of the table', async () => {
    const reg = table.register({ name: 'streams', filters: ['$aws/things/+/streams/#'], handle });
    expect(names('$aws/things/t1/streams/s/get/json')).toEqual(['audit', 'streams']);
    await reg.unregister();
    expect(names('$aws/things/t1/streams/s/get/json')).toEqual(['audit']);
  });

  it('dispatch only enqueues: the handler runs on a later turn, never on the routing path', async () => {
    const t = new ServiceTable({ logger });
    const seen: string[] = [];
    const reg = t.register({
      name: 'sync',
      filters: ['$aws/things/+/shadow/update'],
      handle: (r) => {
        seen.push(r.topic);
        throw new Error('even a throwing handler stays off the caller');
      },
    });
    const m = msg('$aws/things/t9/shadow/update');
    expect(() => t.dispatch(t.match(m)!, m)).not.toThrow();
    expect(seen).toEqual([]);
    await waitFor(() => reg.stats().errors === 1);
    expect(seen).toEqual(['$aws/things/t9/shadow/update']);
    await t.close();
  });

  it("broker-owned: $aws/events/# and the services' answer topics, never their request topics", () => {
    expect(isBrokerOwned('$aws/events/presence/connected/c1')).toBe(true);
    expect(isBrokerOwned('$aws/events')).toBe(true);
    expect(isBrokerOwned('$aws/eventsX/a')).toBe(false);
    expect(isBrokerOwned('aws/events/x')).toBe(false);
    for (const answer of [
      '$aws/things/t1/shadow/update/accepted',
      '$aws/things/t1/shadow/update/delta',
      '$aws/things/t1/shadow/update/documents',
      '$aws/things/t1/shadow/get/rejected',
      '$aws/things/t1/shadow/name/cfg/delete/accepted',
      '$aws/things/t1/jobs/notify-next',
      '$aws/things/t1/jobs/notify',
      '$aws/things/t1/jobs/start-next/accepted',
      '$aws/things/t1/jobs/job-1/update/rejected',
      '$aws/things/t1/streams/s1/data/cbor',
      '$aws/certificates/create/json/accepted',
      '$aws/certificates/create-from-csr/cbor/rejected',
      '$aws/provisioning-templates/factory/provision/json/accepted',
    ])
      expect(isBrokerOwned(answer), answer).toBe(true);
    for (const request of [
      '$aws/things/t1/shadow/update',
      '$aws/things/t1/shadow/name/cfg/get',
      '$aws/things/t1/jobs/get',
      '$aws/things/t1/jobs/start-next',
      '$aws/things/t1/jobs/job-1/update',
      '$aws/things/t1/streams/s1/get/cbor',
      '$aws/things/t1/streams/s1/describe/json',
      '$aws/certificates/create/json',
      '$aws/provisioning-templates/factory/provision/json',
      // A thing or shadow whose name is an answer word is still a request topic.
      '$aws/things/accepted/shadow/name/accepted/update',
    ])
      expect(isBrokerOwned(request), request).toBe(false);
  });
});

/**
 * A small real service for the test (no shadow service exists yet): answers `.../shadow/get` on
 * `.../shadow/get/accepted` as the platform, with who asked. Its filter `$aws/things/+/shadow/#` also
 * matches its own replies, which must not come back to it as requests.
 */
function echoShadow(broker: Broker, delay: () => Promise<void> = async () => undefined) {
  const seen: ServiceRequest[] = [];
  const registration = broker.registerService({
    name: 'echo-shadow',
    filters: ['$aws/things/+/shadow/#'],
    async handle(r) {
      seen.push(r);
      if (!r.topic.endsWith('/get')) return;
      if (r.topic.includes('/boom/')) throw new Error('handler failed');
      await delay();
      const thing = r.topic.split('/')[2]!;
      broker.publish({
        topic: `${r.topic}/accepted`,
        payload: Buffer.from(JSON.stringify({ thing, askedBy: r.publisher.clientId })),
        qos: 1,
        retain: false,
      });
    },
  });
  return { seen, registration };
}

describe('reserved-topic services on the broker', () => {
  let platform: TestPlatform;
  const clients: MqttClient[] = [];
  let seq = 0;
  const client = async (opts: mqtt.IClientOptions = {}) => {
    const c = await mqtt.connectAsync(platform.endpoints.mqtt!, {
      protocolVersion: 5,
      clientId: `svc-${process.pid}-${++seq}`,
      reconnectPeriod: 0,
      ...opts,
    });
    clients.push(c);
    return c;
  };
  const messages = (c: MqttClient) => {
    const got: Array<{ topic: string; payload: string }> = [];
    c.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
    return got;
  };

  beforeAll(async () => {
    platform = await startTestPlatform(
      {},
      {
        hooks: {
          ...anonymousLoopbackHooks(true),
          authorizePublish: (_s, topic) => !topic.startsWith('$aws/things/denied/'),
        },
      },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await platform?.stop();
  });

  it('a request is routed to subscribers AND handed to the service, which replies as the platform', async () => {
    const { seen, registration } = echoShadow(platform.broker);
    try {
      const device = await client();
      const watcher = await client();
      const deviceGot = messages(device);
      const watcherGot = messages(watcher);
      await device.subscribeAsync('$aws/things/t1/shadow/get/accepted', { qos: 1 });
      await watcher.subscribeAsync('$aws/things/t1/shadow/get', { qos: 1 });
      await device.publishAsync('$aws/things/t1/shadow/get', '{}', { qos: 1 });
      const reply = await waitFor(() => deviceGot.find((m) => m.topic.endsWith('/get/accepted')));
      expect(JSON.parse(reply.payload)).toEqual({ thing: 't1', askedBy: device.options.clientId });
      // The request itself reached the ordinary subscriber (AWS lets clients subscribe to request topics).
      await waitFor(() => watcherGot.some((m) => m.topic === '$aws/things/t1/shadow/get'));
      expect(seen.map((r) => [r.topic, r.publisher.clientId, r.qos])).toEqual([
        ['$aws/things/t1/shadow/get', device.options.clientId, 1],
      ]);
      // The reply matched the service's own filter but was the platform's publish: not a request.
      expect(registration.stats()).toMatchObject({ requests: 1, handled: 1, errors: 0 });
    } finally {
      await registration.unregister();
    }
  });

  it('requests are authorized like any publish: refused with v5 PUBACK 0x87 and never reach the service', async () => {
    const { seen, registration } = echoShadow(platform.broker);
    try {
      const device = await client();
      const err = await device.publishAsync('$aws/things/denied/shadow/get', '{}', { qos: 1 }).then(
        () => null,
        (e: { code?: number }) => e,
      );
      expect(err?.code).toBe(0x87);
      // A broker-owned namespace is refused the same way, whether or not a service exists.
      const owned = await device.publishAsync('$aws/events/presence/connected/x', '{}', { qos: 1 }).then(
        () => null,
        (e: { code?: number }) => e,
      );
      expect(owned?.code).toBe(0x87);
      await device.publishAsync('$aws/things/ok/shadow/get', '{}', { qos: 1 });
      await waitFor(() => registration.stats().handled === 1);
      expect(seen.map((r) => r.topic)).toEqual(['$aws/things/ok/shadow/get']);
    } finally {
      await registration.unregister();
    }
  });

  it('a full queue drops requests, counted by reason, while the messages are still routed', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const registration = platform.broker.registerService({
      name: 'tiny',
      filters: ['$aws/things/+/jobs/get'],
      queue: { maxItems: 1 },
      handle: () => gate,
    });
    try {
      const device = await client();
      const watcher = await client();
      const watcherGot = messages(watcher);
      await watcher.subscribeAsync('$aws/things/+/jobs/get');
      await Promise.all(
        Array.from({ length: 6 }, () => device.publishAsync('$aws/things/t2/jobs/get', '{}', { qos: 1 })),
      );
      await waitFor(() => watcherGot.length === 6);
      const s = registration.stats();
      expect(s.requests).toBe(6);
      // One in flight, at most one waiting, the rest refused.
      expect(s.dropped.queue_full).toBeGreaterThanOrEqual(4);
      expect(s.inFlight + s.depth + s.handled + s.dropped.queue_full).toBe(6);
      const text = await (await fetch(`${platform.endpoints.http}/metrics`)).text();
      expect(text).toContain(
        `thingstead_mqtt_service_dropped_total{service="tiny",reason="queue_full"} ${s.dropped.queue_full}`,
      );
      expect(text).toContain('thingstead_mqtt_service_requests_total{service="tiny"} 6');
      open();
      await waitFor(() => registration.stats().handled === 6 - s.dropped.queue_full);
    } finally {
      open();
      await registration.unregister();
    }
  });

  it('a failing handler is counted and the service goes on', async () => {
    const { registration } = echoShadow(platform.broker);
    try {
      const device = await client();
      await device.publishAsync('$aws/things/boom/shadow/get', '{}', { qos: 1 });
      await device.publishAsync('$aws/things/fine/shadow/get', '{}', { qos: 1 });
      await waitFor(() => registration.stats().handled === 1);
      expect(registration.stats()).toMatchObject({ requests: 2, handled: 1, errors: 1 });
      const text = await (await fetch(`${platform.endpoints.http}/metrics`)).text();
      expect(text).toContain('thingstead_mqtt_service_errors_total{service="echo-shadow"}');
    } finally {
      await registration.unregister();
    }
  });

  it('not on the routing path: a slow handler delays neither the request’s PUBACK nor another client’s QoS 0 round trip', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let started = false;
    const { registration } = echoShadow(platform.broker, async () => {
      started = true;
      await gate;
    });
    try {
      const device = await client();
      const deviceGot = messages(device);
      await device.subscribeAsync('$aws/things/slow/shadow/get/accepted');
      // QoS 1: the PUBACK comes back while the service still works on the request.
      await device.publishAsync('$aws/things/slow/shadow/get', '{}', { qos: 1 });
      await waitFor(() => started);
      const other = await client();
      const otherGot = messages(other);
      await other.subscribeAsync('rt/echo');
      const t0 = performance.now();
      other.publish('rt/echo', 'ping', { qos: 0 });
      await waitFor(() => otherGot.length === 1, 2000);
      const roundTripMs = performance.now() - t0;
      expect(deviceGot).toEqual([]);
      expect(registration.stats()).toMatchObject({ requests: 1, handled: 0, inFlight: 1 });
      expect(roundTripMs).toBeLessThan(1000);
      open();
      await waitFor(() => deviceGot.length === 1);
      expect(registration.stats().handled).toBe(1);
    } finally {
      open();
      await registration.unregister();
    }
  });
});
