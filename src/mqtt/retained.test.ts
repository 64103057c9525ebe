/** Retained store: the topic index against the reference matcher, the cursor, and quota accounting. */
import { describe, expect, it } from 'vitest';
import { TopicIndex } from './retained-index.js';
import { RetainedStore, type RetainedInput } from './retained.js';
import type { StoreOp } from './store.js';
import { topicMatches } from './topics.js';

const input = (
  topic: string,
  payload: string | Buffer,
  extra: Partial<RetainedInput> = {},
): RetainedInput => ({
  topic,
  payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
  qos: 0,
  properties: undefined,
  expiresAt: null,
  ...extra,
});

/** A deterministic generator (no flaky random data). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

describe('TopicIndex', () => {
  const topics = [
    'a',
    'a/b',
    'a/b/c',
    'a/x/c',
    'a//c',
    '/a',
    '/',
    'b/b/c/d',
    '$SYS/x',
    '$aws/things/t/shadow/update',
    'x$/y',
  ];
  const index = new TopicIndex<string>();
  for (const t of topics) index.set(t, t);
  const filters = [
    '#',
    '+',
    '+/#',
    '+/+',
    'a/#',
    'a/+',
    'a/+/c',
    'a/b/#',
    '+/b/c',
    '/#',
    '+/a',
    '$SYS/#',
    '$SYS/+',
    '$aws/things/+/shadow/#',
    'a/b/c/#',
    'a/b/c/d',
    'nothing/#',
    'a',
    'x$/+',
  ];

  it.each(filters)('matches %s like topicMatches [MQTT-4.7.1-2, MQTT-4.7.2-1]', (filter) => {
    const expected = topics.filter((t) => topicMatches(filter, t)).sort();
    expect(index.match(filter).sort()).toEqual(expected);
  });

  it('`$` topics are not matched by a first-level wildcard [MQTT-4.7.2-1]; `a/#` matches `a` [MQTT-4.7.1-2]', () => {
    expect(index.match('#')).not.toContain('$SYS/x');
    expect(index.match('+/x')).toEqual([]);
    expect(index.match('$SYS/#')).toEqual(['$SYS/x']);
    expect(index.match('a/#')).toContain('a');
  });

  it('agrees with topicMatches on generated topics and filters', () => {
    const next = rng(42);
    const word = () => ['a', 'b', 'c', '', '$x'][Math.floor(next() * 5)]!;
    const idx = new TopicIndex<string>();
    const all = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const n = 1 + Math.floor(next() * 4);
      const t = Array.from({ length: n }, word).join('/');
      if (t === '' || t.includes('\0')) continue;
      all.add(t);
      idx.set(t, t);
    }
    for (let i = 0; i < 300; i++) {
      const n = 1 + Math.floor(next() * 4);
      const levels = Array.from({ length: n }, () => (next() < 0.3 ? '+' : word()));
      if (next() < 0.3) levels[n - 1] = '#';
      const f = levels.join('/');
      expect(idx.match(f).sort(), f).toEqual([...all].filter((t) => topicMatches(f, t)).sort());
    }
  });

  it('delete prunes and a cursor yields in bounded steps, tolerating changes under it', () => {
    const idx = new TopicIndex<string>();
    for (let i = 0; i < 100; i++) idx.set(`d/${i}/v`, `d/${i}/v`);
    expect(idx.size).toBe(100);
    const c = idx.cursor('d/+/v');
    const out: string[] = [];
    expect(c.take(out, 10, Infinity)).toBe(false);
    expect(out).toHaveLength(10);
    // Changes behind and ahead of the cursor: removed ones are not yielded.
    for (let i = 50; i < 100; i++) expect(idx.delete(`d/${i}/v`)).toBe(true);
    expect(idx.delete('d/50/v')).toBe(false);
    let turns = 0;
    while (!c.take(out, 7, 20)) turns++;
    expect(turns).toBeGreaterThan(3);
    expect(new Set(out).size).toBe(50);
    expect(out.every((t) => Number(t.split('/')[1]) < 50)).toBe(true);
    for (let i = 0; i < 50; i++) idx.delete(`d/${i}/v`);
    expect(idx.size).toBe(0);
    expect(idx.match('#')).toEqual([]);
  });

  it('a narrow wildcard visits only its branch (steps bounded by the branch, not the index)', () => {
    const idx = new TopicIndex<number>();
    for (let d = 0; d < 1000; d++) for (let k = 0; k < 20; k++) idx.set(`dev/${d}/k${k}`, d);
    const c = idx.cursor('dev/7/+');
    const out: number[] = [];
    // 1 root visit + dev + 7 + the `+` iterator over 20 children + 20 visits: well under 100 steps.
    expect(c.take(out, Infinity, 100)).toBe(true);
    expect(out).toHaveLength(20);
  });
});

describe('RetainedStore', () => {
  const limits = { maxRetained: 5, maxRetainedBytes: 100, maxRetainedPerClient: 2 };

  it('match keeps its semantics: expired entries removed (and unretained) on the way [MQTT-3.3.2-5]', () => {
    const ops: StoreOp[] = [];
    const r = new RetainedStore((op) => ops.push(op));
    r.set(input('s/1', 'x'));
    r.set(input('s/2', 'y', { expiresAt: Date.now() - 1 }));
    r.set(input('s', 'z'));
    expect(
      r
        .match('s/#')
        .map((e) => e.topic)
        .sort(),
    ).toEqual(['s', 's/1']);
    expect(r.size).toBe(2);
    expect(ops.filter((o) => o.op === 'unretain')).toEqual([{ op: 'unretain', topic: 's/2' }]);
    expect(r.match('s/1').map((e) => e.topic)).toEqual(['s/1']);
    expect(r.match('s/2')).toEqual([]);
  });

  it('admit: per-client cap; replacing is not new; clearing frees; another owner taking a topic moves it', () => {
    const r = new RetainedStore(() => undefined, { limits });
    expect(r.admit('c1', 't/1', 1)).toBeNull();
    r.set(input('t/1', 'a', { owner: 'c1' }));
    r.set(input('t/2', 'a', { owner: 'c1' }));
    expect(r.ownedBy('c1')).toBe(2);
    expect(r.admit('c1', 't/3', 1)).toMatch(/2 per client/);
    expect(r.admit('c1', 't/1', 5)).toBeNull(); // replacement
    expect(r.admit('c1', 't/3', 0)).toBeNull(); // a clear is always admitted
    r.set(input('t/2', '', { owner: 'c1' })); // clear frees
    expect(r.ownedBy('c1')).toBe(1);
    expect(r.admit('c1', 't/3', 1)).toBeNull();
    // c2 takes t/1 over: counted for c2, freed for c1.
    r.set(input('t/1', 'b', { owner: 'c2' }));
    expect([r.ownedBy('c1'), r.ownedBy('c2')]).toEqual([0, 1]);
    // The platform (null) is exempt from the per-client cap.
    expect(r.admit(null, 't/9', 1)).toBeNull();
  });

  it('admit and set: total count and bytes caps; set refuses over a total even without admit', () => {
    const refused: string[] = [];
    const r = new RetainedStore(() => undefined, { limits, onRefused: (why) => refused.push(why) });
    for (let i = 0; i < 5; i++) expect(r.set(input(`n/${i}`, 'x'))).toBe(true); // 4 bytes each
    expect(r.size).toBe(5);
    expect(r.bytes).toBe(20);
    expect(r.admit(null, 'n/5', 1)).toMatch(/5 in total/);
    expect(r.set(input('n/5', 'x'))).toBe(false);
    expect(refused).toEqual([expect.stringMatching(/5 in total/)]);
    expect(r.set(input('n/0', 'y'))).toBe(true); // replacing at the count cap is fine
    expect(r.admit(null, 'n/1', 100)).toMatch(/100 bytes in total/);
    expect(r.set(input('n/1', Buffer.alloc(82)))).toBe(false); // 20 - 4 + 85 = 101 bytes
    expect(r.set(input('n/1', Buffer.alloc(81)))).toBe(true); // 20 - 4 + 84 = 100 bytes: at the cap
    expect(r.bytes).toBe(100);
    expect(r.set(input('n/2', Buffer.alloc(10)))).toBe(false); // would be 100 - 4 + 13 = 109
    expect(r.get('n/2')!.payload.toString()).toBe('x'); // a refused replacement keeps the old value
    r.set(input('n/1', ''));
    expect([r.size, r.bytes]).toEqual([4, 16]);
  });

  it('bytes count the UTF-8 topic; load restores owners and totals', () => {
    const r = new RetainedStore(() => undefined, { limits });
    r.load([
      {
        topic: 'é',
        payload: Buffer.from('ab'),
        qos: 1,
        retain: true,
        expiresAt: null,
        modifiedAt: 1,
        owner: 'c1',
      },
      {
        topic: 'f',
        payload: Buffer.from('ab'),
        qos: 1,
        retain: true,
        expiresAt: null,
        modifiedAt: 1,
        owner: 'c1',
      },
      { topic: 'g', payload: Buffer.from('ab'), qos: 1, retain: true, expiresAt: null, modifiedAt: 1 },
    ]);
    expect(r.bytes).toBe(4 + 3 + 3);
    expect(r.ownedBy('c1')).toBe(2);
    expect(r.admit('c1', 'h', 1)).toMatch(/per client/);
    expect(r.match('+').map((e) => e.owner)).toEqual(['c1', 'c1', null]);
  });
});
