/** Retained messages [MQTT-3.3.1-5..12] and retain handling [MQTT-3.3.1-9..11]. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { collect, connect, end, uniqueId, waitFor } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

describe('retained messages', () => {
  it('a new subscription receives the retained message with RETAIN=1 [MQTT-3.3.1-6, MQTT-3.3.1-8]', async () => {
    const base = `r/${uniqueId()}`;
    const pub = await connect(platform);
    await pub.publishAsync(`${base}/a`, 'A', { qos: 1, retain: true });
    await pub.publishAsync(`${base}/b`, 'B', { qos: 0, retain: true });
    const sub = await connect(platform, { protocolVersion: 4 });
    const got = collect(sub);
    await sub.subscribeAsync(`${base}/+`, { qos: 1 });
    await waitFor(() => got.length === 2);
    expect(got.map((m) => [m.payload, m.packet.retain]).sort()).toEqual([
      ['A', true],
      ['B', true],
    ]);
    await end(pub, sub);
  });

  it('live deliveries carry RETAIN=0 unless Retain As Published [MQTT-3.3.1-12, MQTT-3.3.1-13]', async () => {
    const topic = `r/${uniqueId()}`;
    const plain = await connect(platform);
    const rap = await connect(platform);
    const gotPlain = collect(plain);
    const gotRap = collect(rap);
    await plain.subscribeAsync(topic);
    await rap.subscribeAsync(topic, { qos: 0, rap: true });
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'live', { qos: 1, retain: true });
    await waitFor(() => gotPlain.length === 1 && gotRap.length === 1);
    expect(gotPlain[0]!.packet.retain).toBe(false);
    expect(gotRap[0]!.packet.retain).toBe(true);
    await end(plain, rap, pub);
  });

  it('an empty retained payload clears the topic [MQTT-3.3.1-10, MQTT-3.3.1-11]', async () => {
    const topic = `r/${uniqueId()}`;
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'x', { qos: 1, retain: true });
    expect(platform.broker.retained(topic)?.payload.toString()).toBe('x');
    await pub.publishAsync(topic, '', { qos: 1, retain: true });
    expect(platform.broker.retained(topic)).toBeUndefined();
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(topic);
    await pub.publishAsync(topic, 'after', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('after');
    await end(pub, sub);
  });

  it('retain handling: 0 always, 1 only for new subscriptions, 2 never [MQTT-3.3.1-9..11]', async () => {
    const topic = `r/${uniqueId()}`;
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'R', { qos: 1, retain: true });
    const c = await connect(platform);
    const got = collect(c);
    await c.subscribeAsync(topic, { qos: 0, rh: 2 });
    await c.subscribeAsync(topic, { qos: 0, rh: 1 }); // existing subscription -> nothing
    await c.subscribeAsync(`${topic}/#`, { qos: 0, rh: 1 }); // new -> R (a/# matches a)
    await c.subscribeAsync(topic, { qos: 0, rh: 0 }); // always -> R
    await waitFor(() => got.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.length).toBe(2);
    await end(pub, c);
  });

  it('retained messages are listed for the data plane with lastModifiedTime', async () => {
    const topic = `r/${uniqueId()}`;
    const pub = await connect(platform);
    const before = Date.now();
    await pub.publishAsync(topic, 'listed', { qos: 1, retain: true });
    const found = platform.broker.listRetained().find((m) => m.topic === topic);
    expect(found?.payload.toString()).toBe('listed');
    expect(found!.lastModifiedTime).toBeGreaterThanOrEqual(before);
    await end(pub);
  });

  it('a platform publish with retain=true is retained and delivered', async () => {
    const topic = `r/${uniqueId()}`;
    platform.broker.publish({ topic, payload: Buffer.from('from-api'), qos: 1, retain: true });
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('from-api');
    await end(sub);
  });
});
