/**
 * Limits and bad input: oversize payloads and packets, filters per SUBSCRIBE, malformed packets,
 * inbound receive maximum, slow consumers, and the metrics that count them. Never a crash.
 */
import { connect as netConnect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, connect, end, metric, uniqueId, waitFor } from './helpers.js';
import { RC, reasonName } from '../../src/mqtt/reason-codes.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({
    limits: {
      maxPayloadBytes: 1000,
      maxPacketBytes: 4000,
      maxFiltersPerSubscribe: 2,
      maxOutboundBytes: 64 * 1024,
      maxInflight: 3,
    },
  });
});
afterAll(async () => {
  await platform?.stop();
});

describe('limits', () => {
  it('payload over limits.maxPayloadBytes: v5 DISCONNECT 0x95, counted; 3.1.1 closed', async () => {
    const before = await metric(platform, 'thingstead_mqtt_messages_dropped_total', {
      reason: 'payload_too_large',
    });
    const c = await connect(platform);
    let reason: number | undefined;
    c.on('disconnect', (p) => (reason = p.reasonCode));
    c.publish(`l/${uniqueId()}`, Buffer.alloc(1001));
    await waitFor(() => reason !== undefined);
    expect(reason).toBe(RC.PACKET_TOO_LARGE);
    const c4 = await connect(platform, { protocolVersion: 4 });
    const closed = new Promise<void>((r) => c4.once('close', () => r()));
    c4.publish(`l/${uniqueId()}`, Buffer.alloc(1001));
    await closed;
    expect(
      await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'payload_too_large' }),
    ).toBe(before + 2);
    await end(c, c4);
  });

  it('packet over limits.maxPacketBytes: DISCONNECT 0x95 before reading it whole [MQTT-3.1.2-24 server side]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    // Header of a PUBLISH announcing 1 MB; the body never comes.
    raw.write([0x30, 0x80, 0x80, 0x40]);
    expect(((await raw.next('disconnect')) as { reasonCode: number }).reasonCode).toBe(RC.PACKET_TOO_LARGE);
    await raw.waitClosed();
  });

  it('more filters than limits.maxFiltersPerSubscribe: the extra ones get 0x97 (v5) / 0x80 (3.1.1)', async () => {
    for (const [version, refused] of [
      [5, 0x97],
      [4, 0x80],
    ] as const) {
      const raw = await RawClient.open(platform, version);
      raw.send(
        { cmd: 'connect', protocolVersion: version, clientId: uniqueId(), clean: true, keepalive: 10 },
        version,
      );
      await raw.next('connack');
      raw.send(
        {
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: ['a', 'b', 'c'].map((topic) => ({ topic, qos: 0 as const })),
        },
        version,
      );
      expect(((await raw.next('suback')) as { granted: number[] }).granted).toEqual([0, 0, refused]);
      raw.destroy();
    }
  });

  it('malformed packet: v5 DISCONNECT 0x81 and close [MQTT-1.5.x, MQTT-2.2.2-2]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    // SUBSCRIBE with reserved flags 0000 instead of 0010.
    raw.write([0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61]);
    expect(((await raw.next('disconnect')) as { reasonCode: number }).reasonCode).toBe(RC.MALFORMED_PACKET);
    await raw.waitClosed();
  });

  it('garbage bytes never crash the broker', async () => {
    for (let i = 0; i < 20; i++) {
      const raw = await RawClient.open(platform, 4);
      raw.send({ cmd: 'connect', protocolVersion: 4, clientId: uniqueId(), clean: true, keepalive: 10 });
      raw.write(Buffer.from(Array.from({ length: 64 }, (_, k) => (k * 37 + i * 11) & 0xff)));
      // Either a protocol error closes it, or it waits for the rest of a plausible packet.
      await raw.waitClosed(100).catch(() => raw.destroy());
    }
    const ok = await connect(platform);
    expect(ok.connected).toBe(true);
    await end(ok);
  });

  it('inbound QoS 2 beyond our Receive Maximum: DISCONNECT 0x93 [MQTT-3.3.4-7]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    for (let id = 1; id <= 4; id++) {
      raw.send(
        {
          cmd: 'publish',
          topic: 'q2/x',
          payload: Buffer.from('x'),
          qos: 2,
          messageId: id,
          dup: false,
          retain: false,
        },
        5,
      );
    }
    expect(((await raw.next('disconnect')) as { reasonCode: number }).reasonCode).toBe(
      RC.RECEIVE_MAXIMUM_EXCEEDED,
    );
  });

  it('a subscriber that never reads is disconnected as a slow consumer and counted (limits.maxOutboundBytes)', async () => {
    const topic = `slow/${uniqueId()}`;
    const before = await metric(platform, 'thingstead_mqtt_messages_dropped_total', {
      reason: 'slow_consumer',
    });
    const socket = netConnect({ host: '127.0.0.1', port: platform.endpoints.mqttPort! });
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolVersion: 4,
        clientId: uniqueId('slow'),
        clean: true,
        keepalive: 60,
      }),
    );
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
    await new Promise((r) => setTimeout(r, 100));
    socket.pause(); // never read again
    const pub = await connect(platform);
    const payload = Buffer.alloc(900, 0x61);
    for (let i = 0; i < 30_000 && !closed; i++) {
      pub.publish(topic, payload, { qos: 0 });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(
      async () =>
        (await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'slow_consumer' })) >
        before,
      10_000,
    );
    socket.destroy();
    expect(pub.connected).toBe(true);
    await end(pub);
  }, 20_000);

  it('metrics: connections gauge, packets and bytes by type, latency histogram', async () => {
    const c = await connect(platform);
    await c.subscribeAsync('m/x');
    await c.publishAsync('m/x', 'x', { qos: 1 });
    expect(await metric(platform, 'thingstead_mqtt_connections')).toBeGreaterThanOrEqual(1);
    expect(
      await metric(platform, 'thingstead_mqtt_packets_total', { direction: 'in', type: 'publish' }),
    ).toBeGreaterThan(0);
    expect(await metric(platform, 'thingstead_mqtt_bytes_total', { direction: 'out' })).toBeGreaterThan(0);
    await waitFor(async () =>
      (await platform.metrics.metrics()).includes('thingstead_mqtt_delivery_latency_seconds_count'),
    );
    await end(c);
  });
});

describe('CONNECTs per client id (AWS §11: 1 per second per client id)', () => {
  let limited: TestPlatform;
  beforeAll(async () => {
    limited = await startTestPlatform({
      limits: { connectsPerClientIdPerSecond: 2, connectBurstPerClientId: 2 },
    });
  });
  afterAll(async () => {
    await limited?.stop();
  });

  async function connack(version: 4 | 5, clientId: string) {
    const raw = await RawClient.open(limited, version);
    raw.send({ cmd: 'connect', protocolVersion: version, clientId, clean: true, keepalive: 10 }, version);
    const ack = (await raw.next('connack')) as { reasonCode?: number; returnCode?: number };
    raw.destroy();
    return version === 5 ? ack.reasonCode : ack.returnCode;
  }

  it('beyond the burst: v5 CONNACK 0x9F Connection rate exceeded, 3.1.1 return code 3, counted; admitted again once the rate allows', async () => {
    const before = await metric(limited, 'thingstead_mqtt_connects_refused_total', {
      reason: 'CONNECTION_RATE_EXCEEDED',
    });
    const id = uniqueId('rate');
    expect(await connack(5, id)).toBe(RC.SUCCESS);
    expect(await connack(5, id)).toBe(RC.SUCCESS);
    expect(reasonName((await connack(5, id))!)).toBe('CONNECTION_RATE_EXCEEDED');
    // 3.1.1 has no such code: 3 Server unavailable (retry later).
    expect(await connack(4, id)).toBe(3);
    // Other client ids are not affected.
    expect(await connack(5, uniqueId('rate'))).toBe(RC.SUCCESS);
    expect(
      await metric(limited, 'thingstead_mqtt_connects_refused_total', { reason: 'CONNECTION_RATE_EXCEEDED' }),
    ).toBe(before + 2);
    await new Promise((r) => setTimeout(r, 600));
    expect(await connack(5, id)).toBe(RC.SUCCESS);
  });
});
