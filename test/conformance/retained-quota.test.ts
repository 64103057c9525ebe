/**
 * Retained-message quotas (issue 8, "No device can take the platform down"): limits.maxRetainedPerClient,
 * limits.maxRetained and limits.maxRetainedBytes. Over a cap a v5 PUBLISH with RETAIN gets PUBACK/PUBREC
 * 0x97 Quota exceeded with a reason string and is not routed; QoS 0 is dropped and counted; a 3.1.1 client is
 * disconnected. Replacing a topic is not a new one, clearing frees, and the owner survives a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { IPubackPacket, Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RC } from '../../src/mqtt/reason-codes.js';
import { collect, connect, end, uniqueId, waitFor } from './helpers.js';

/** Sum of the samples of `name` on GET /metrics whose label text matches `labels` (the metric must exist). */
async function scrape(platform: TestPlatform, name: string, labels?: RegExp): Promise<number> {
  const text = await (await fetch(`${platform.endpoints.http}/metrics`)).text();
  if (!text.includes(`# TYPE ${name} `)) throw new Error(`metric ${name} is not exported on /metrics`);
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name && (!labels || labels.test(m[2] ?? ''))) total += Number(m[3]);
  }
  return total;
}

const quotaDrops = (p: TestPlatform) =>
  scrape(p, 'thingstead_mqtt_messages_dropped_total', /reason="retained_quota"/);

/** Acknowledgements a client receives (PUBACK/PUBREC with reason code and properties). */
function acks(c: MqttClient): IPubackPacket[] {
  const got: IPubackPacket[] = [];
  c.on('packetreceive', (p: Packet) => {
    if (p.cmd === 'puback' || p.cmd === 'pubrec') got.push(p as IPubackPacket);
  });
  return got;
}

/** Publish and wait for the acknowledgement, whatever its reason code (MQTT.js rejects on >= 0x80). */
async function publishAcked(c: MqttClient, topic: string, payload: string, qos: 1 | 2): Promise<void> {
  await c.publishAsync(topic, payload, { qos, retain: true }).catch(() => undefined);
}

describe('retained quota per client (limits.maxRetainedPerClient)', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ limits: { maxRetainedPerClient: 3 } });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('v5: PUBACK/PUBREC 0x97 with a reason string, not routed; QoS 0 dropped and counted', async () => {
    const base = `q/${uniqueId()}`;
    const watcher = await connect(platform);
    const seen = collect(watcher);
    await watcher.subscribeAsync(`${base}/#`, { qos: 1 });
    const c = await connect(platform);
    const got = acks(c);
    const before = await quotaDrops(platform);
    for (let i = 0; i < 3; i++) await c.publishAsync(`${base}/${i}`, `v${i}`, { qos: 1, retain: true });
    await publishAcked(c, `${base}/3`, 'over1', 1);
    await publishAcked(c, `${base}/4`, 'over2', 2);
    c.publish(`${base}/5`, 'over0', { qos: 0, retain: true });
    await c.publishAsync(`${base}/done`, 'sentinel', { qos: 1 }); // not retained: not counted
    await waitFor(() => seen.some((m) => m.payload === 'sentinel'));

    expect(got.map((a) => a.reasonCode ?? 0)).toEqual([0, 0, 0, RC.QUOTA_EXCEEDED, RC.QUOTA_EXCEEDED, 0]);
    expect(got[3]!.properties?.reasonString).toMatch(/retained message quota exceeded \(3 per client\)/);
    expect(seen.map((m) => m.payload)).toEqual(['v0', 'v1', 'v2', 'sentinel']); // refused ones not routed
    expect(platform.broker.retained(`${base}/3`)).toBeUndefined();
    expect(platform.broker.retained(`${base}/5`)).toBeUndefined();
    expect(await quotaDrops(platform)).toBe(before + 3);
    await end(watcher, c);
  });

  it('replacing an own topic is not a new one; clearing frees; the cap is per client id', async () => {
    const base = `q/${uniqueId()}`;
    const c = await connect(platform);
    for (let i = 0; i < 3; i++) await c.publishAsync(`${base}/${i}`, 'a', { qos: 1, retain: true });
    await c.publishAsync(`${base}/0`, 'replaced', { qos: 1, retain: true }); // replacement: accepted
    expect(platform.broker.retained(`${base}/0`)?.payload.toString()).toBe('replaced');
    await expect(c.publishAsync(`${base}/3`, 'x', { qos: 1, retain: true })).rejects.toMatchObject({
      code: RC.QUOTA_EXCEEDED,
    });
    await c.publishAsync(`${base}/1`, '', { qos: 1, retain: true }); // clear frees one
    await c.publishAsync(`${base}/3`, 'now fits', { qos: 1, retain: true });
    expect(platform.broker.retained(`${base}/3`)?.payload.toString()).toBe('now fits');
    // Another client has its own budget.
    const other = await connect(platform);
    await other.publishAsync(`${base}/other`, 'o', { qos: 1, retain: true });
    expect(platform.broker.retained(`${base}/other`)).toBeDefined();
    await end(c, other);
  });

  it('3.1.1: a retained PUBLISH over the cap disconnects the client (as for not authorized), counted', async () => {
    const base = `q/${uniqueId()}`;
    const c = await connect(platform, { protocolVersion: 4 });
    for (let i = 0; i < 3; i++) await c.publishAsync(`${base}/${i}`, 'a', { qos: 1, retain: true });
    const before = await quotaDrops(platform);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(`${base}/3`, 'over', { qos: 1, retain: true });
    await closed;
    expect(platform.broker.retained(`${base}/3`)).toBeUndefined();
    expect(await quotaDrops(platform)).toBe(before + 1);
    await end(c);
  });
});

describe('retained quota in total (limits.maxRetained, limits.maxRetainedBytes)', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ limits: { maxRetained: 5, maxRetainedBytes: 4096 } });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('count: every client is refused once the total is reached, the platform too; gauges on /metrics', async () => {
    const base = `t/${uniqueId()}`;
    const a = await connect(platform);
    const b = await connect(platform);
    for (let i = 0; i < 3; i++) await a.publishAsync(`${base}/a${i}`, 'xx', { qos: 1, retain: true });
    for (let i = 0; i < 2; i++) await b.publishAsync(`${base}/b${i}`, 'xx', { qos: 1, retain: true });
    expect(await scrape(platform, 'thingstead_mqtt_retained_messages')).toBe(5);
    // Bytes are payload + topic: 2 + `${base}/a0`.length for each of the five (ASCII topics).
    expect(await scrape(platform, 'thingstead_mqtt_retained_bytes')).toBe(5 * (2 + `${base}/a0`.length));
    const got = acks(b);
    await publishAcked(b, `${base}/b2`, 'xx', 1);
    expect(got[0]!.reasonCode).toBe(RC.QUOTA_EXCEEDED);
    expect(got[0]!.properties?.reasonString).toMatch(/5 in total/);
    // The platform's own publish bypasses the per-client cap but not the total.
    expect(() =>
      platform.broker.publish({ topic: `${base}/api`, payload: Buffer.from('p'), qos: 0, retain: true }),
    ).toThrow(/5 in total/);
    // Replacing at the total is fine, and a clear makes room for someone else.
    await b.publishAsync(`${base}/b0`, 'yy', { qos: 1, retain: true });
    await a.publishAsync(`${base}/a0`, '', { qos: 1, retain: true });
    await b.publishAsync(`${base}/b2`, 'xx', { qos: 1, retain: true });
    expect(platform.broker.retained(`${base}/b2`)).toBeDefined();
    for (const t of ['a1', 'a2', 'b0', 'b1', 'b2'])
      await a.publishAsync(`${base}/${t}`, '', { qos: 1, retain: true });
    expect(await scrape(platform, 'thingstead_mqtt_retained_messages')).toBe(0);
    expect(await scrape(platform, 'thingstead_mqtt_retained_bytes')).toBe(0);
    await end(a, b);
  });

  it('bytes: a retained payload that would pass the total bytes is refused, a smaller one fits', async () => {
    const base = `t/${uniqueId()}`;
    const c = await connect(platform);
    const got = acks(c);
    await c.publishAsync(`${base}/big`, Buffer.alloc(3000, 1), { qos: 1, retain: true });
    await publishAcked(c, `${base}/big2`, 'x'.repeat(1500), 1);
    expect(got.map((a) => a.reasonCode ?? 0)).toEqual([0, RC.QUOTA_EXCEEDED]);
    expect(got[1]!.properties?.reasonString).toMatch(/4096 bytes in total/);
    // Growing an existing entry past the total is refused too; the old value stays.
    await publishAcked(c, `${base}/big`, 'y'.repeat(4100), 1);
    expect(platform.broker.retained(`${base}/big`)?.payload.length).toBe(3000);
    await c.publishAsync(`${base}/small`, 'x'.repeat(500), { qos: 1, retain: true });
    await c.publishAsync(`${base}/big`, '', { qos: 1, retain: true });
    await c.publishAsync(`${base}/small`, '', { qos: 1, retain: true });
    await end(c);
  });
});

describe('retained quota across a restart', () => {
  it('the owner of each retained topic is persisted, so the per-client cap still holds after restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-retained-quota-'));
    const limits = { maxRetainedPerClient: 2 };
    const clientId = uniqueId('owner');
    const base = `r/${uniqueId()}`;
    try {
      const p1 = await startTestPlatform({ limits }, { dataDir });
      const c1 = await connect(p1, { clientId });
      await c1.publishAsync(`${base}/0`, 'a', { qos: 1, retain: true });
      await c1.publishAsync(`${base}/1`, 'b', { qos: 1, retain: true });
      await end(c1);
      await p1.stop();

      const p2 = await startTestPlatform({ limits }, { dataDir });
      try {
        expect(p2.broker.retained(`${base}/1`)?.payload.toString()).toBe('b');
        const c2 = await connect(p2, { clientId });
        await expect(c2.publishAsync(`${base}/2`, 'c', { qos: 1, retain: true })).rejects.toMatchObject({
          code: RC.QUOTA_EXCEEDED,
        });
        await c2.publishAsync(`${base}/0`, 'replaced', { qos: 1, retain: true }); // still its own
        const other = await connect(p2);
        await other.publishAsync(`${base}/1`, 'taken over', { qos: 1, retain: true }); // moves ownership
        await c2.publishAsync(`${base}/2`, 'fits now', { qos: 1, retain: true });
        await end(c2, other);
      } finally {
        await p2.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
