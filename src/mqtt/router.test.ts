/** Topic trie: matching semantics, replacement, removal with pruning, cache invalidation. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TopicRouter, type SubEntry, type SubOwner } from './router.js';
import { topicMatches } from './topics.js';

const owner = (name: string): SubOwner & { name: string } => ({ kind: 'internal', name });
const entry = (o: SubOwner, filter: string, qos: 0 | 1 | 2 = 0): SubEntry => ({
  owner: o,
  filter,
  qos,
  nl: false,
  rap: false,
  rh: 0,
  subId: undefined,
});
const names = (r: TopicRouter, topic: string) =>
  r
    .match(topic)
    .entries.map((e) => (e.owner as unknown as { name: string }).name)
    .sort();

describe('TopicRouter', () => {
  it('matches exact, +, # and the parent of # [MQTT-4.7.1-2]; $ topics only by explicit filters [MQTT-4.7.2-1]', () => {
    const r = new TopicRouter();
    const filters = ['a/b', 'a/+', 'a/#', '#', '+/b', '$SYS/#', '+/+'];
    for (const f of filters) r.add(f, entry(owner(f), f));
    expect(names(r, 'a/b')).toEqual(['#', '+/+', '+/b', 'a/#', 'a/+', 'a/b']);
    expect(names(r, 'a')).toEqual(['#', 'a/#']);
    expect(names(r, '$SYS/x')).toEqual(['$SYS/#']);
  });

  it('replaces a subscription of the same owner [MQTT-3.8.4-3] and prunes on removal', () => {
    const r = new TopicRouter();
    const o = owner('o');
    expect(r.add('x/y', entry(o, 'x/y', 0))).toBe(true);
    expect(r.add('x/y', entry(o, 'x/y', 1))).toBe(false);
    expect(r.match('x/y').entries.map((e) => e.qos)).toEqual([1]);
    const gen = r.generation;
    expect(r.remove('x/y', o)).toBe(true);
    expect(r.generation).toBeGreaterThan(gen);
    expect(r.match('x/y').entries).toEqual([]);
    expect(r.size).toBe(0);
  });

  it('agrees with topicMatches for random filters and topics (property)', () => {
    const level = fc.constantFrom('a', 'b', 'c', '', '$x');
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '+', ''), { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'));
    fc.assert(
      fc.property(fc.array(filter, { minLength: 1, maxLength: 6 }), topic, (fs, t) => {
        const r = new TopicRouter();
        fs.forEach((f, i) => r.add(f, entry(owner(String(i)), f)));
        const got = new Set(r.match(t).entries.map((e) => e.filter));
        const want = new Set(fs.filter((f) => topicMatches(f, t)));
        expect(got).toEqual(want);
      }),
    );
  });
});
