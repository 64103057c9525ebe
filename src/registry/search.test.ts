import { describe, expect, test } from 'vitest';
import { FleetIndex, compileQuery, parseQuery, type FieldProvider, type IndexedThing } from './search.js';

/** Fleet-indexing query syntax (AWS IoT Developer Guide, "Query syntax") over the in-memory index. */

const thing = (
  name: string,
  attrs: Record<string, string> = {},
  extra: Partial<IndexedThing> = {},
): IndexedThing => ({
  thingName: name,
  thingId: `id-${name}`,
  thingTypeName: null,
  attributes: attrs,
  version: 1,
  groups: [],
  ...extra,
});

const things = [
  thing('alpha', { temp: '25', site: 'north' }, { thingTypeName: 'sensor', groups: ['g1'] }),
  thing('beta', { temp: '9', site: 'south' }, { thingTypeName: 'sensor' }),
  thing('gamma', { temp: '100', site: 'north east' }, { thingTypeName: 'valve', groups: ['g1', 'g2'] }),
  thing('delta', {}),
];

function run(query: string, connected: string[] = [], providers: FieldProvider[] = []): string[] {
  const p = compileQuery(parseQuery(query), { isConnected: (n) => connected.includes(n), providers });
  return things.filter(p).map((t) => t.thingName);
}

describe('query syntax', () => {
  test('field:value, bare term = thing name, wildcards * and ?', () => {
    expect(run('thingTypeName:sensor')).toEqual(['alpha', 'beta']);
    expect(run('beta')).toEqual(['beta']);
    expect(run('thingName:*a')).toEqual(['alpha', 'beta', 'gamma', 'delta']);
    expect(run('thingName:?eta')).toEqual(['beta']);
    expect(run('thingName:al*')).toEqual(['alpha']);
    expect(run('attributes.site:*')).toEqual(['alpha', 'beta', 'gamma']);
    expect(run('attributes.site:"north east"')).toEqual(['gamma']);
  });

  test('numeric ranges and comparisons (numeric when both sides are numbers)', () => {
    expect(run('attributes.temp:[9 TO 25]')).toEqual(['alpha', 'beta']);
    expect(run('attributes.temp:{9 TO 25]')).toEqual(['alpha']);
    expect(run('attributes.temp:[26 TO *]')).toEqual(['gamma']);
    expect(run('attributes.temp>25')).toEqual(['gamma']);
    expect(run('attributes.temp >= 25')).toEqual(['alpha', 'gamma']);
    expect(run('attributes.temp<10')).toEqual(['beta']);
  });

  test('AND, OR, NOT, parentheses, implicit AND; lists match any element', () => {
    expect(run('thingTypeName:sensor AND attributes.site:north')).toEqual(['alpha']);
    expect(run('thingTypeName:sensor attributes.site:north')).toEqual(['alpha']);
    expect(run('thingTypeName:valve OR attributes.site:south')).toEqual(['beta', 'gamma']);
    expect(run('NOT thingTypeName:sensor')).toEqual(['gamma', 'delta']);
    expect(run('(thingTypeName:sensor OR thingTypeName:valve) AND NOT thingGroupNames:g1')).toEqual(['beta']);
    expect(run('thingGroupNames:g2')).toEqual(['gamma']);
  });

  test('connectivity.connected comes from the isConnected dependency', () => {
    expect(run('connectivity.connected:true', ['beta'])).toEqual(['beta']);
    expect(run('connectivity.connected:false', ['beta'])).toEqual(['alpha', 'gamma', 'delta']);
  });

  test('field providers extend the field set (shadow.reported.* later)', () => {
    const shadow: FieldProvider = {
      handles: (f) => f.startsWith('shadow.reported.'),
      value: (t, f) => (t.thingName === 'delta' && f === 'shadow.reported.on' ? 'true' : undefined),
    };
    expect(run('shadow.reported.on:true', [], [shadow])).toEqual(['delta']);
    expect(() => run('shadow.reported.on:true')).toThrow(/Unknown field/);
  });

  test.each(['', 'thingName:', 'attributes.temp:[1 TO', '(a', 'a)', 'attributes.temp:[1 5]', '"open'])(
    'syntax error %j is InvalidQueryException',
    (q) => {
      expect(() => parseQuery(q)).toThrow(expect.objectContaining({ name: 'InvalidQueryException' }));
    },
  );
});

describe('FleetIndex', () => {
  test('keyset pagination in name order, upsert/remove keep order', () => {
    const idx = new FleetIndex();
    idx.load([thing('c'), thing('a')]);
    idx.upsert(thing('b'));
    idx.upsert(thing('d'));
    idx.remove('c');
    const all = () => true;
    const p1 = idx.search(all, undefined, 2);
    expect(p1.things.map((t) => t.thingName)).toEqual(['a', 'b']);
    expect(p1.more).toBe(true);
    const p2 = idx.search(all, 'b', 2);
    expect(p2.things.map((t) => t.thingName)).toEqual(['d']);
    expect(p2.more).toBe(false);
    expect(idx.search(all, 'bb', 5).things.map((t) => t.thingName)).toEqual(['d']);
  });
});

describe('FleetIndex planning agrees with a full scan', () => {
  test('posting-list plans return exactly what the predicate selects, across updates', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const idx = new FleetIndex();
    const docs = new Map<string, IndexedThing>();
    const make = (i: number) =>
      thing(
        `t${String(i).padStart(4, '0')}`,
        { color: ['red', 'blue', 'green'][rnd(3)]!, n: String(rnd(5)) },
        {
          thingTypeName: ['a', 'b', null][rnd(3)] ?? null,
          groups: rnd(2) ? ['g'] : [],
        },
      );
    idx.load([]);
    for (let i = 0; i < 3000; i++) {
      const t = make(rnd(800));
      docs.set(t.thingName, t);
      idx.upsert(t);
      if (rnd(10) === 0) {
        const victim = [...docs.keys()][rnd(docs.size)]!;
        docs.delete(victim);
        idx.remove(victim);
      }
    }
    const queries = [
      'attributes.color:red',
      'attributes.color:red AND thingTypeName:a',
      'attributes.color:blue OR thingGroupNames:g',
      'thingTypeName:b AND NOT attributes.color:green',
      'thingName:t0001 OR attributes.color:nope',
      'attributes.n:3',
    ];
    for (const q of queries) {
      const p = compileQuery(parseQuery(q), { isConnected: () => false });
      const expected = [...docs.values()]
        .filter(p)
        .map((t) => t.thingName)
        .sort();
      const got: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = idx.search(p, after, 37);
        got.push(...page.things.map((t) => t.thingName));
        if (!page.more) break;
        after = got[got.length - 1];
      }
      expect(got, q).toEqual(expected);
    }
  });
});
