/**
 * Sessions [MQTT-4.1]: clean session / clean start, persistent sessions with queued QoS 1/2 messages,
 * session expiry, DUP redelivery of unacknowledged messages [MQTT-4.4.0-1], bounded queues, and a
 * platform restart on the same data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, metric, prepare, uniqueId, waitFor } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ limits: { maxQueuedPerSession: 5, sessionExpiryMax: 3600 } });
});
afterAll(async () => {
  await platform?.stop();
});

describe('persistent sessions', () => {
  it('3.1.1 clean session 0: subscriptions and QoS 1 messages survive a disconnect; sessionPresent [MQTT-3.2.2-2]', async () => {
    const clientId = uniqueId('p');
    const topic = `s/${clientId}`;
    const a = await connect(platform, { protocolVersion: 4, clientId, clean: false });
    expect(a.connected).toBe(true);
    await a.subscribeAsync(topic, { qos: 1 });
    await end(a);
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'while-away-1', { qos: 1 });
    await pub.publishAsync(topic, 'while-away-0', { qos: 0 });
    const b = prepare(platform, { protocolVersion: 4, clientId, clean: false });
    const got = collect(b);
    let present: boolean | undefined;
    b.on('connect', (ack) => (present = ack.sessionPresent));
    b.connect();
    await waitFor(() => got.length >= 1);
    expect(present).toBe(true);
    // QoS 0 is not queued for offline sessions; QoS 1 is.
    expect(got.map((m) => m.payload)).toEqual(['while-away-1']);
    await end(b, pub);
  });

  it('clean session 1 / clean start discards the session [MQTT-3.1.2-4, MQTT-3.1.2-6]', async () => {
    const clientId = uniqueId('c');
    const topic = `s/${clientId}`;
    const a = await connect(platform, {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    await a.subscribeAsync(topic, { qos: 1 });
    await end(a);
    const b = await connect(platform, { protocolVersion: 5, clientId, clean: true });
    const got = collect(b);
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'x', { qos: 1 });
    const probe = await connect(platform);
    const seen = collect(probe);
    await probe.subscribeAsync(topic);
    await pub.publishAsync(topic, 'y', { qos: 1 });
    await waitFor(() => seen.length === 1);
    expect(got).toEqual([]);
    await end(b, pub, probe);
  });

  it('v5 session expiry: the session is gone after Session Expiry Interval [MQTT-3.1.2-23]', async () => {
    const clientId = uniqueId('e');
    const a = await connect(platform, { clientId, clean: true, properties: { sessionExpiryInterval: 1 } });
    await a.subscribeAsync(`s/${clientId}`, { qos: 1 });
    await end(a);
    await waitFor(() => !platform.broker.isConnected(clientId));
    await new Promise((r) => setTimeout(r, 1200));
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId,
        clean: false,
        keepalive: 10,
        properties: { sessionExpiryInterval: 10 },
      },
      5,
    );
    const ack = (await raw.next('connack')) as { sessionPresent: boolean };
    expect(ack.sessionPresent).toBe(false);
    raw.destroy();
  });

  it('session expiry is capped by limits.sessionExpiryMax and told in CONNACK [MQTT-5.0 §3.2.2.3.2]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { sessionExpiryInterval: 0xffffffff },
      },
      5,
    );
    const ack = (await raw.next('connack')) as { properties?: { sessionExpiryInterval?: number } };
    expect(ack.properties?.sessionExpiryInterval).toBe(3600);
    raw.destroy();
  });

  it('unacknowledged QoS 1 is resent with DUP=1 and the same packet id on reconnect [MQTT-4.4.0-1]', async () => {
    const clientId = uniqueId('dup');
    const topic = `s/${clientId}`;
    const raw = await RawClient.open(platform, 4);
    raw.send({ cmd: 'connect', protocolVersion: 4, clientId, clean: false, keepalive: 30 });
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await raw.next('suback');
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'needs-ack', { qos: 1 });
    const first = (await raw.next('publish')) as { messageId: number; dup: boolean };
    expect(first.dup).toBe(false);
    raw.destroy(); // never PUBACKed
    await waitFor(() => !platform.broker.isConnected(clientId));
    const again = await RawClient.open(platform, 4);
    again.send({ cmd: 'connect', protocolVersion: 4, clientId, clean: false, keepalive: 30 });
    await again.next('connack');
    const resent = (await again.next('publish')) as { messageId: number; dup: boolean; payload: Buffer };
    expect(resent.dup).toBe(true);
    expect(resent.messageId).toBe(first.messageId);
    expect(resent.payload.toString()).toBe('needs-ack');
    again.send({ cmd: 'puback', messageId: resent.messageId });
    again.destroy();
    await end(pub);
  });

  it('queues are bounded (limits.maxQueuedPerSession): the oldest are dropped and counted', async () => {
    const clientId = uniqueId('q');
    const topic = `s/${clientId}`;
    const a = await connect(platform, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await a.subscribeAsync(topic, { qos: 1 });
    await end(a);
    const before = await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'queue_full' });
    const pub = await connect(platform);
    for (let i = 0; i < 8; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    const after = await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'queue_full' });
    expect(after - before).toBe(3);
    const b = prepare(platform, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    const got = collect(b);
    b.connect();
    await waitFor(() => got.length === 5);
    expect(got.map((m) => m.payload)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
    await end(b, pub);
  });

  it('QoS 1 delivery respects the client Receive Maximum [MQTT-3.3.4-9]', async () => {
    const clientId = uniqueId('rm');
    const topic = `s/${clientId}`;
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId,
        clean: true,
        keepalive: 30,
        properties: { receiveMaximum: 2 },
      },
      5,
    );
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }, 5);
    await raw.next('suback');
    const pub = await connect(platform);
    for (let i = 0; i < 5; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    await waitFor(() => raw.packets.filter((p) => p.cmd === 'publish').length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(raw.packets.filter((p) => p.cmd === 'publish')).toHaveLength(2);
    const firstId = (raw.packets.find((p) => p.cmd === 'publish') as { messageId: number }).messageId;
    raw.send({ cmd: 'puback', messageId: firstId }, 5);
    await waitFor(() => raw.packets.filter((p) => p.cmd === 'publish').length === 3);
    raw.destroy();
    await end(pub);
  });
});

describe('restart on the same data directory', () => {
  it('QoS 1 messages queued for an offline persistent session and retained messages survive a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-restart-'));
    try {
      const clientId = uniqueId('r');
      const topic = `restart/${clientId}`;
      let p1: TestPlatform | undefined = await startTestPlatform({}, { dataDir });
      const a = await connect(p1, { clientId, clean: false, properties: { sessionExpiryInterval: 600 } });
      await a.subscribeAsync(topic, { qos: 1 });
      await end(a);
      const pub = await connect(p1);
      await pub.publishAsync(topic, 'queued-1', { qos: 1 });
      await pub.publishAsync(topic, 'queued-2', { qos: 2 });
      await pub.publishAsync(`retained/${clientId}`, 'kept', { qos: 1, retain: true });
      await end(pub);
      await p1.stop();
      p1 = undefined;

      const p2 = await startTestPlatform({}, { dataDir });
      try {
        expect(p2.broker.retained(`retained/${clientId}`)?.payload.toString()).toBe('kept');
        const b = prepare(p2, { clientId, clean: false, properties: { sessionExpiryInterval: 600 } });
        const got = collect(b);
        let present: boolean | undefined;
        b.on('connect', (ack) => (present = ack.sessionPresent));
        b.connect();
        await waitFor(() => got.length === 2);
        expect(present).toBe(true);
        expect(got.map((m) => m.payload)).toEqual(['queued-1', 'queued-2']);
        // The subscription itself survived too.
        const pub2 = await connect(p2);
        await pub2.publishAsync(topic, 'live', { qos: 1 });
        await waitFor(() => got.length === 3);
        const r = await connect(p2);
        const rgot = collect(r);
        await r.subscribeAsync(`retained/${clientId}`);
        await waitFor(() => rgot.length === 1);
        expect(rgot[0]!.packet.retain).toBe(true);
        await end(b, pub2, r);
      } finally {
        await p2.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
