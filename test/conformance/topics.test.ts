/** Topic names and filters [MQTT-4.7]: wildcards, `$` topics, validity and the configured limits. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import { topicMatches } from '../../src/mqtt/index.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ limits: { maxTopicLevels: 8, maxTopicBytes: 256 } });
});
afterAll(async () => {
  await platform?.stop();
});

describe('matching', () => {
  it('wildcard semantics [MQTT-4.7.1-2, MQTT-4.7.1-3] (standard: a/# matches a)', () => {
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('+/+', '/x')).toBe(true);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
  });

  it('routes through the trie with # and + and the parent level', async () => {
    const base = uniqueId('m');
    const c = await connect(platform);
    const got = collect(c);
    await c.subscribeAsync([`${base}/#`, `${base}/+/z`]);
    const pub = await connect(platform);
    await pub.publishAsync(base, 'parent', { qos: 1 });
    await pub.publishAsync(`${base}/y/z`, 'both', { qos: 1 });
    await waitFor(() => got.length === 2);
    // Overlapping subscriptions deliver once [MQTT-3.3.4-2 allows one copy].
    expect(got.map((m) => m.payload).sort()).toEqual(['both', 'parent']);
    await end(c, pub);
  });

  it('topics starting with $ are not matched by a leading # or + [MQTT-4.7.2-1]', async () => {
    const id = uniqueId();
    const all = await connect(platform);
    const gotAll = collect(all);
    await all.subscribeAsync(['#', '+/x']);
    const dollar = await connect(platform);
    const gotDollar = collect(dollar);
    await dollar.subscribeAsync(`$custom/${id}`);
    platform.broker.publish({ topic: `$custom/${id}`, payload: Buffer.from('d'), qos: 0, retain: false });
    await waitFor(() => gotDollar.length === 1);
    expect(gotAll.filter((m) => m.topic.startsWith('$'))).toEqual([]);
    await end(all, dollar);
  });
});

describe('validation', () => {
  it('wildcards in a PUBLISH topic: v5 DISCONNECT 0x90 [MQTT-3.3.2-2]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    raw.send(
      { cmd: 'publish', topic: 'a/+/b', payload: Buffer.from('x'), qos: 0, dup: false, retain: false },
      5,
    );
    const d = (await raw.next('disconnect')) as { reasonCode: number };
    expect(d.reasonCode).toBe(0x90);
    await raw.waitClosed();
  });

  it('invalid filters get SUBACK 0x8F (v5) / 0x80 (3.1.1) [MQTT-4.7.1-1]', async () => {
    const c = await connect(platform);
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    raw.send(
      {
        cmd: 'subscribe',
        messageId: 7,
        subscriptions: [
          { topic: 'a/#/b', qos: 0 },
          { topic: 'a/b+', qos: 0 },
          { topic: 'ok/+', qos: 1 },
        ],
      },
      5,
    );
    const s = (await raw.next('suback')) as { granted: number[] };
    expect(s.granted).toEqual([0x8f, 0x8f, 1]);
    raw.destroy();
    await end(c);
  });

  it('topics over limits.maxTopicLevels / maxTopicBytes are refused (v5 PUBACK 0x90, SUBACK 0x8F)', async () => {
    const c = await connect(platform);
    const deep = 'a/b/c/d/e/f/g/h/i';
    await expect(c.publishAsync(deep, 'x', { qos: 1 })).rejects.toThrow();
    await expect(c.publishAsync('x'.repeat(257), 'x', { qos: 1 })).rejects.toThrow();
    await expect(c.subscribeAsync(deep)).rejects.toThrow();
    // 8 levels is fine; the Basic Ingest prefix $aws/rules/{rule}/ does not count (AWS §11).
    await c.publishAsync('a/b/c/d/e/f/g/h', 'x', { qos: 1 });
    await c.publishAsync('$aws/rules/r1/a/b/c/d/e/f/g/h', 'x', { qos: 1 });
    await end(c);
  });

  it('ill-formed UTF-8 in a topic closes the connection [MQTT-1.5.4-1]', async () => {
    const raw = await RawClient.open(platform, 4);
    raw.send({ cmd: 'connect', protocolVersion: 4, clientId: uniqueId(), clean: true, keepalive: 10 });
    await raw.next('connack');
    // PUBLISH QoS 0, topic "a\xff" (invalid UTF-8), payload "x".
    raw.write([0x30, 0x06, 0x00, 0x02, 0x61, 0xff, 0x78, 0x79]);
    await raw.waitClosed();
  });
});
