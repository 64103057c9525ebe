/**
 * Abuse the broker is expected to absorb (CONVENTIONS.md #8: every queue bounded, every drop counted):
 * - a connection flood: hundreds of sockets that never send CONNECT are closed once
 *   limits.connectTimeoutMs has passed, and counted, while real clients keep being served;
 * - a publish flood: pipelined QoS 0 and QoS 1 publishes from raw sockets are all routed and acknowledged;
 * - a client that never reads is disconnected as a slow consumer once its outbound bytes pass
 *   limits.maxOutboundBytes (metric and disconnect reason), without hurting a subscriber that reads.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

let seq = 0;
const uid = (p: string) => `${p}-${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 7)}`;

const scrape = scrapeMetric;

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ port, host: '127.0.0.1' });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function client(platform: TestPlatform, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(platform.endpoints.mqtt!, {
    protocolVersion: 5,
    clientId: uid('c'),
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
}

/** A raw 3.1.1 connection that has completed CONNECT/CONNACK; counts PUBACKs it receives. */
async function rawConnected(platform: TestPlatform): Promise<{ socket: Socket; pubacks: () => number }> {
  const socket = await rawSocket(platform.endpoints.mqttPort!);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let connack = false;
  let pubacks = 0;
  parser.on('packet', (p) => {
    if (p.cmd === 'connack') connack = true;
    else if (p.cmd === 'puback') pubacks++;
  });
  socket.on('data', (d) => parser.parse(d));
  socket.on('error', () => undefined);
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: uid('raw'),
      keepalive: 0,
    }),
  );
  await waitFor(() => connack, 5000, 'CONNACK');
  return { socket, pubacks: () => pubacks };
}

describe('connection flood and publish flood', () => {
  const CONNECT_TIMEOUT_MS = 400;
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ limits: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('closes hundreds of sockets that never send CONNECT after limits.connectTimeoutMs, and keeps serving', async () => {
    const FLOOD = 300;
    const timeoutsBefore = await scrape(platform, 'thingstead_mqtt_disconnects_total', /connect_timeout/);
    const opened = Date.now();
    const sockets = await Promise.all(
      Array.from({ length: FLOOD }, () => rawSocket(platform.endpoints.mqttPort!)),
    );
    const closedAt: number[] = [];
    for (const s of sockets) {
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now()));
      s.resume();
    }
    try {
      // A real client is served while the flood holds its sockets open.
      const c = await client(platform);
      const got = new Promise<string>((resolve) => c.on('message', (_t, p) => resolve(p.toString())));
      await c.subscribeAsync('flood/alive', { qos: 1 });
      await c.publishAsync('flood/alive', 'served', { qos: 1 });
      expect(await got).toBe('served');
      await c.endAsync(true);

      await waitFor(
        () => closedAt.length === FLOOD,
        CONNECT_TIMEOUT_MS + 10_000,
        'every idle socket to be closed',
      );
      // [MQTT-3.1.4] the server closes a connection that does not send CONNECT within a reasonable time;
      // not before the configured timeout.
      expect(Math.min(...closedAt) - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS * 0.9);
      await waitFor(
        async () =>
          (await scrape(platform, 'thingstead_mqtt_disconnects_total', /connect_timeout/)) - timeoutsBefore >=
          FLOOD,
        5000,
        'connect_timeout disconnects to be counted',
      );
      expect(platform.broker.clients()).toHaveLength(0);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('acknowledges a pipelined flood of QoS 0 and QoS 1 publishes; every message is delivered or counted as dropped', async () => {
    const N = 20_000;
    const topic = `${uid('flood')}/data`;
    const queueFullBefore = await scrape(platform, 'thingstead_mqtt_messages_dropped_total', /queue_full/);
    const sub = await client(platform, { protocolVersion: 4 });
    let got0 = 0;
    let got1 = 0;
    sub.on('message', (_t, _p, packet) => (packet.qos === 0 ? got0++ : got1++));
    await sub.subscribeAsync(topic, { qos: 1 });
    const pub = await rawConnected(platform);
    try {
      // Pre-encoded, written in large pipelined chunks without waiting for any acknowledgement.
      const frame = (qos: 0 | 1, id: number) =>
        mqttPacket.generate({
          cmd: 'publish',
          topic,
          payload: Buffer.alloc(32, 0x61),
          qos,
          messageId: qos ? id : undefined,
          retain: false,
          dup: false,
        });
      const q0 = Buffer.concat(Array.from({ length: N }, () => frame(0, 0)));
      const q1 = Buffer.concat(Array.from({ length: N }, (_, i) => frame(1, (i % 65535) + 1)));
      pub.socket.write(q0);
      pub.socket.write(q1);
      // [MQTT-4.3.2-2] every QoS 1 PUBLISH is acknowledged.
      await waitFor(() => pub.pubacks() === N, 20_000, `${N} PUBACKs (got ${pub.pubacks()})`);
      // QoS 0 goes straight to the socket. QoS 1 beyond the subscriber's in-flight window waits in a queue
      // bounded by limits.maxQueuedPerSession; what does not fit is dropped oldest-first and counted.
      const accounted = async () => {
        const dropped =
          (await scrape(platform, 'thingstead_mqtt_messages_dropped_total', /queue_full/)) - queueFullBefore;
        return got0 === N && got1 + dropped === N;
      };
      await waitFor(
        accounted,
        20_000,
        `all ${2 * N} messages delivered or counted (qos0 ${got0}, qos1 ${got1})`,
      );
      expect(got1).toBeGreaterThanOrEqual(platform.config.limits.maxQueuedPerSession);
      expect(platform.broker.isConnected(sub.options.clientId!)).toBe(true);
    } finally {
      pub.socket.destroy();
      await sub.endAsync(true);
    }
  });
});

describe('slow consumer', () => {
  const MAX_OUTBOUND = 256 * 1024;
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ limits: { maxOutboundBytes: MAX_OUTBOUND } });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('disconnects a subscriber that never reads once limits.maxOutboundBytes is exceeded, and counts it', async () => {
    const topic = `${uid('slow')}/firehose`;
    const droppedBefore = await scrape(platform, 'thingstead_mqtt_messages_dropped_total', /slow_consumer/);
    const disconnectsBefore = await scrape(platform, 'thingstead_mqtt_disconnects_total', /slow_consumer/);

    // The slow consumer: subscribes, then stops reading its socket for good.
    const slowId = uid('slow');
    const slow = await rawSocket(platform.endpoints.mqttPort!);
    slow.on('error', () => undefined);
    slow.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: slowId,
        keepalive: 0,
      }),
    );
    slow.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
    await waitFor(
      () => platform.broker.clients().some((c) => c.clientId === slowId && c.subscriptions === 1),
      5000,
      'the slow consumer to subscribe',
    );
    slow.pause();

    // A subscriber that reads keeps up and is not affected.
    const fast = await client(platform);
    let fastGot = 0;
    fast.on('message', () => fastGot++);
    await fast.subscribeAsync(topic, { qos: 0 });

    const pub = await client(platform);
    // 16 KB messages, and never more than 8 unread by the fast subscriber (128 KB < the limit).
    const payload = Buffer.alloc(16 * 1024, 0x62);
    let sent = 0;
    try {
      // Kernel socket buffers absorb the first megabytes; publish until the broker gives up on the reader.
      while (platform.broker.isConnected(slowId) && sent < 4000) {
        await pub.publishAsync(topic, payload, { qos: 0 });
        sent++;
        if (sent % 8 === 0) {
          await waitFor(() => fastGot === sent || !fast.connected, 10_000, 'the fast subscriber to keep up');
          expect({ sent, fastGot, fastConnected: fast.connected }).toEqual({
            sent,
            fastGot: sent,
            fastConnected: true,
          });
        }
      }
      expect(platform.broker.isConnected(slowId)).toBe(false);
      await waitFor(
        async () =>
          (await scrape(platform, 'thingstead_mqtt_messages_dropped_total', /slow_consumer/)) > droppedBefore,
        5000,
        'the slow_consumer drop counter to move',
      );
      await waitFor(
        async () =>
          (await scrape(platform, 'thingstead_mqtt_disconnects_total', /slow_consumer/)) > disconnectsBefore,
        5000,
        'a slow_consumer disconnect to be counted',
      );
      // The publisher and the reading subscriber are still connected and everything reached the reader.
      await waitFor(() => fastGot === sent, 10_000, 'the fast subscriber to receive every message');
      expect(pub.connected && fast.connected).toBe(true);
    } finally {
      slow.destroy();
      await pub.endAsync(true);
      await fast.endAsync(true);
    }
  });
});
