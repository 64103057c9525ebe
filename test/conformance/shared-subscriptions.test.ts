/** Shared subscriptions $share/{group}/{filter} [MQTT-4.8.2]. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import { RC } from '../../src/mqtt/reason-codes.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

describe('shared subscriptions', () => {
  it('each message goes to one member of the group; groups and plain subscribers each get a copy [MQTT-4.8.2-4]', async () => {
    const base = `sh/${uniqueId()}`;
    const a = await connect(platform);
    const b = await connect(platform);
    const other = await connect(platform);
    const plain = await connect(platform);
    const ga = collect(a);
    const gb = collect(b);
    const go = collect(other);
    const gp = collect(plain);
    await a.subscribeAsync(`$share/g1/${base}/+`, { qos: 1 });
    await b.subscribeAsync(`$share/g1/${base}/+`, { qos: 1 });
    await other.subscribeAsync(`$share/g2/${base}/#`, { qos: 1 });
    await plain.subscribeAsync(`${base}/#`, { qos: 1 });
    const pub = await connect(platform);
    for (let i = 0; i < 10; i++) await pub.publishAsync(`${base}/x`, `m${i}`, { qos: 1 });
    await waitFor(() => ga.length + gb.length === 10 && go.length === 10 && gp.length === 10);
    expect(ga.length).toBeGreaterThan(0);
    expect(gb.length).toBeGreaterThan(0);
    const union = [...ga, ...gb].map((m) => m.payload).sort();
    expect(new Set(union).size).toBe(10);
    await end(a, b, other, plain, pub);
  });

  it('shared subscriptions get no retained messages [MQTT-5.0 §4.8.2]', async () => {
    const topic = `sh/${uniqueId()}`;
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'R', { qos: 1, retain: true });
    const c = await connect(platform);
    const got = collect(c);
    await c.subscribeAsync(`$share/g/${topic}`);
    await pub.publishAsync(topic, 'live', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('live');
    await end(pub, c);
  });

  it('No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]; a bad share name is 0x8F', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: '$share/g+/x', qos: 0 }] }, 5);
    expect(((await raw.next('suback')) as { granted: number[] }).granted).toEqual([0x8f]);
    raw.send(
      { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$share/g/x', qos: 0, nl: true }] },
      5,
    );
    expect(((await raw.next('disconnect')) as { reasonCode: number }).reasonCode).toBe(RC.PROTOCOL_ERROR);
  });

  it('a member that unsubscribes stops receiving; the rest of the group gets everything', async () => {
    const topic = `sh/${uniqueId()}`;
    const a = await connect(platform);
    const b = await connect(platform);
    const ga = collect(a);
    const gb = collect(b);
    await a.subscribeAsync(`$share/g/${topic}`);
    await b.subscribeAsync(`$share/g/${topic}`);
    await b.unsubscribeAsync(`$share/g/${topic}`);
    const pub = await connect(platform);
    for (let i = 0; i < 4; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    await waitFor(() => ga.length === 4);
    expect(gb).toEqual([]);
    await end(a, b, pub);
  });
});
