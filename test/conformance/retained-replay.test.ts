/**
 * Retained replay for wide subscriptions (issue 8): after the SUBACK [MQTT-3.3.1-9..11] the matches are
 * delivered in bounded chunks across event-loop turns; the replay stops when the subscription goes or the
 * connection ends, and it waits for the socket (QoS 0) or the session queue (QoS 1/2) instead of
 * overflowing them.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, metric, uniqueId, waitFor } from './helpers.js';

const publishesOut = (p: TestPlatform) =>
  metric(p, 'thingstead_mqtt_packets_total', { direction: 'out', type: 'publish' });
const dropped = (p: TestPlatform, reason: string) =>
  metric(p, 'thingstead_mqtt_messages_dropped_total', { reason });

function retainMany(p: TestPlatform, base: string, n: number, qos: 0 | 1, size = 8): void {
  const payload = Buffer.alloc(size, 0x61);
  for (let i = 0; i < n; i++) p.broker.publish({ topic: `${base}/${i}`, payload, qos, retain: true });
}

/** A few event-loop turns and timers: long enough for a running replay to deliver several more chunks. */
const settle = () => new Promise((r) => setTimeout(r, 100));

async function rawV5(platform: TestPlatform): Promise<RawClient> {
  const raw = await RawClient.open(platform, 5);
  raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 30 }, 5);
  await raw.next('connack');
  return raw;
}

describe('retained replay', () => {
  let platform: TestPlatform;
  const N = 20_000;
  const base = `wide/${uniqueId()}`;
  beforeAll(async () => {
    platform = await startTestPlatform();
    retainMany(platform, base, N, 0);
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('SUBACK comes first; an UNSUBSCRIBE right behind the SUBSCRIBE stops the replay [MQTT-3.3.1-9]', async () => {
    const raw = await rawV5(platform);
    const before = await publishesOut(platform);
    const sub = mqttWrite(
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/#`, qos: 0 }] },
      { cmd: 'unsubscribe', messageId: 2, unsubscriptions: [`${base}/#`] },
    );
    raw.write(sub);
    await raw.next('unsuback');
    await settle();
    const after = raw.packets.filter((p) => p.cmd !== 'connack');
    expect(after[0]!.cmd).toBe('suback');
    const published = after.filter((p) => p.cmd === 'publish');
    expect(published.length).toBeGreaterThan(0);
    // Old behaviour: all N delivered synchronously before the UNSUBSCRIBE was even read.
    expect(published.length).toBeLessThan(N / 4);
    expect(await publishesOut(platform)).toBe(before + published.length);
    const count = published.length;
    await settle();
    expect(raw.packets.filter((p) => p.cmd === 'publish').length).toBe(count);
    raw.destroy();
  });

  it('a DISCONNECT right behind the SUBSCRIBE stops the replay', async () => {
    const raw = await rawV5(platform);
    const before = await publishesOut(platform);
    raw.write(
      mqttWrite(
        { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/#`, qos: 0 }] },
        { cmd: 'disconnect', reasonCode: 0 },
      ),
    );
    await raw.waitClosed();
    await settle();
    const sent = (await publishesOut(platform)) - before;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(N / 4);
    raw.destroy();
  });

  it('a replay too big for one turn arrives whole, once each, with RETAIN=1, while others are served', async () => {
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(`${base}/#`, { qos: 0 });
    // Another client gets its round trip before the replay is over (it is not stuck behind 20k messages).
    const other = await connect(platform);
    const echo = collect(other);
    const t = `rt/${uniqueId()}`;
    await other.subscribeAsync(t);
    await other.publishAsync(t, 'ping');
    await waitFor(() => echo.length === 1);
    expect(got.length).toBeLessThan(N);
    await waitFor(() => got.length >= N, 20_000, 'the whole replay');
    expect(new Set(got.map((m) => m.topic)).size).toBe(N);
    expect(got.every((m) => m.packet.retain)).toBe(true);
    await end(sub, other);
  });
});

describe('retained replay backpressure', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({
      limits: { maxQueuedPerSession: 50, maxInflight: 10, maxOutboundBytes: 64 * 1024 },
    });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('QoS 1: waits for the session queue (limits.maxQueuedPerSession) instead of dropping', async () => {
    const base = `q1/${uniqueId()}`;
    const n = 3000;
    retainMany(platform, base, n, 1);
    const before = await dropped(platform, 'queue_full');
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(`${base}/#`, { qos: 1 });
    await waitFor(() => got.length >= n, 20_000, 'every retained QoS 1 message');
    expect(new Set(got.map((m) => m.topic)).size).toBe(n);
    expect(got.every((m) => m.packet.qos === 1 && m.packet.retain)).toBe(true);
    expect(await dropped(platform, 'queue_full')).toBe(before);
    await end(sub);
  });

  it('QoS 0: waits for the socket (limits.maxOutboundBytes) instead of a slow-consumer disconnect', async () => {
    const base = `q0/${uniqueId()}`;
    const n = 20_000; // ~2.6 MB of PUBLISHes against a 64 KB outbound limit
    retainMany(platform, base, n, 0, 100);
    const before = await dropped(platform, 'slow_consumer');
    const sub = await connect(platform);
    let closed = false;
    sub.on('close', () => (closed = true));
    const got = collect(sub);
    await sub.subscribeAsync(`${base}/#`, { qos: 0 });
    await waitFor(() => got.length >= n || closed, 20_000, 'every retained QoS 0 message');
    expect(closed).toBe(false);
    expect(new Set(got.map((m) => m.topic)).size).toBe(n);
    expect(await dropped(platform, 'slow_consumer')).toBe(before);
    await end(sub);
  });
});

/** Several packets in one write, so the broker reads them in one turn. */
function mqttWrite(...packets: Packet[]): Buffer {
  return Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: 5 })));
}
