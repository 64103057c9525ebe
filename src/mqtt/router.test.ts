/** Topic trie: matching semantics, replacement, removal with pruning, the incremental match cache. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PATCH_BUDGET, TopicRouter, type MatchResult, type SubEntry, type SubOwner } from './router.js';
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

  it('a SUBSCRIBE updates the match cache instead of emptying it (cached results stay, others are patched)', () => {
    const r = new TopicRouter();
    r.add('t/#', entry(owner('base'), 't/#'));
    const topics = Array.from({ length: 100 }, (_, i) => `t/${i}`);
    const before = topics.map((t) => r.match(t));
    expect(r.cachedTopics).toBe(100);
    // A storm of distinct filters that match none of the cached topics: every cached result is kept as is.
    for (let i = 0; i < 1000; i++) r.add(`storm/${i}/#`, entry(owner(`s${i}`), `storm/${i}/#`));
    expect(r.cachedTopics).toBe(100);
    topics.forEach((t, i) => expect(r.match(t)).toBe(before[i]));
    // One that matches a cached topic patches that result (and only it); the held result is unchanged.
    r.add('t/7', entry(owner('seven'), 't/7'));
    expect(names(r, 't/7')).toEqual(['base', 'seven']);
    expect(before[7]!.entries.map((e) => e.filter)).toEqual(['t/#']);
    expect(r.match('t/8')).toBe(before[8]);
    // A removal takes the entry out of the cached results it is in.
    r.remove('t/#', r.match('t/1').entries[0]!.owner);
    expect(names(r, 't/1')).toEqual([]);
    expect(names(r, 't/7')).toEqual(['seven']);
    expect(r.cachedTopics).toBe(100);
  });

  it('a change too wide to patch invalidates the whole cache by generation, then refills on demand', () => {
    const r = new TopicRouter();
    const topics = Array.from({ length: PATCH_BUDGET + 10 }, (_, i) => `w/${i}`);
    for (const t of topics) r.match(t);
    const o = owner('all');
    r.add('#', entry(o, '#'));
    expect(r.cachedTopics).toBe(topics.length); // invalidated by generation, not emptied
    for (const t of topics) expect(names(r, t)).toEqual(['all']);
    expect(names(r, '$SYS/x')).toEqual([]);
    r.remove('#', o);
    for (const t of topics) expect(names(r, t)).toEqual([]);
  });

  it('evicts the oldest cached topics past its bound and stays correct', () => {
    const r = new TopicRouter();
    r.add('e/+', entry(owner('p'), 'e/+'));
    for (let i = 0; i < 50_100; i++) r.match(`e/${i}`);
    expect(r.cachedTopics).toBeLessThanOrEqual(50_000);
    r.add('e/5', entry(owner('five'), 'e/5'));
    expect(names(r, 'e/5')).toEqual(['five', 'p']);
    expect(names(r, 'e/50099')).toEqual(['p']);
  });

  it('agrees with a brute-force matcher under random subscribe / unsubscribe / match sequences (property)', () => {
    const owners = ['o1', 'o2', 'o3'].map(owner);
    const level = fc.constantFrom('a', 'b', '', '$x');
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '+', '', '$x'), { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'))
      .filter((f) => f !== '');
    const group = fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined, freq: 3 });
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        o: fc.nat(2),
        filter,
        group,
        qos: fc.constantFrom(0, 1, 2),
      }),
      fc.record({ kind: fc.constant('remove' as const), o: fc.nat(2), filter, group }),
      fc.record({ kind: fc.constant('match' as const), topic }),
    );
    type Model = Map<string, { o: number; filter: string; group: string | undefined; qos: number }>;
    const expected = (model: Model, t: string) => {
      const plain: string[] = [];
      const groups = new Map<string, string[]>();
      for (const m of model.values()) {
        if (!topicMatches(m.filter, t)) continue;
        const who = `${owners[m.o]!.name}|${m.filter}|${m.qos}`;
        if (m.group === undefined) plain.push(who);
        else {
          const k = `${m.group}|${m.filter}`;
          groups.set(k, [...(groups.get(k) ?? []), who]);
        }
      }
      return {
        plain: plain.sort(),
        groups: [...groups].map(([k, v]) => `${k}:${v.sort().join(',')}`).sort(),
      };
    };
    const describe = (res: MatchResult) => ({
      plain: res.entries
        .map((e) => `${(e.owner as unknown as { name: string }).name}|${e.filter}|${e.qos}`)
        .sort(),
      groups: res.groups
        .map(
          (g) =>
            `${g.group}|${g.filter}:${g.members
              .map((e) => `${(e.owner as unknown as { name: string }).name}|${e.filter}|${e.qos}`)
              .sort()
              .join(',')}`,
        )
        .sort(),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const r = new TopicRouter();
        const model: Model = new Map();
        // Results handed out earlier must never change under the caller (copy-on-write).
        const held: Array<{ res: MatchResult; entries: SubEntry[]; groups: unknown[] }> = [];
        const seen = new Set<string>();
        for (const x of ops) {
          if (x.kind === 'add') {
            const key = `${x.o}|${x.filter}|${x.group ?? ''}`;
            const isNew = r.add(x.filter, entry(owners[x.o]!, x.filter, x.qos), x.group);
            expect(isNew).toBe(!model.has(key));
            model.set(key, { o: x.o, filter: x.filter, group: x.group, qos: x.qos });
          } else if (x.kind === 'remove') {
            const key = `${x.o}|${x.filter}|${x.group ?? ''}`;
            expect(r.remove(x.filter, owners[x.o]!, x.group)).toBe(model.delete(key));
          } else {
            const res = r.match(x.topic);
            seen.add(x.topic);
            expect(describe(res)).toEqual(expected(model, x.topic));
            held.push({ res, entries: [...res.entries], groups: [...res.groups] });
          }
          expect(r.size).toBe(model.size);
          // Incremental: no change empties the cache (these sequences stay far below PATCH_BUDGET).
          expect(r.cachedTopics).toBe(seen.size);
        }
        for (const h of held) {
          expect(h.res.entries).toEqual(h.entries);
          expect(h.res.groups).toEqual(h.groups);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
