/**
 * Contract suite for ShadowStore (store.ts), run against SQLite and real PostgreSQL. Each engine gets two
 * handles on the same data (two SQLite connections on one file; two PostgreSQL pools on one schema), so the
 * conflict cases are writers that do not share a connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database } from '../store/index.js';
import { createShadowStore } from './store-sql.js';
import type { ShadowStore, StoredShadow } from './store.js';

const hasPg = await postgresAvailable('shadow store contract on PostgreSQL');
const kinds = hasPg ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);

const T0 = 1_700_000_000_000;

const row = (
  thingName: string,
  shadowName: string,
  version: number,
  document: string | null = JSON.stringify({ state: { reported: { v: version } } }),
): StoredShadow => ({
  thingName,
  shadowName,
  version,
  document,
  updatedAt: T0 + version,
  deletedAt: document === null ? T0 + version : null,
});

const tombstone = (thingName: string, shadowName: string, version: number, deletedAt = T0 + version) => ({
  ...row(thingName, shadowName, version, null),
  deletedAt,
  updatedAt: deletedAt,
});

/** Bytewise UTF-8 order, the order the contract promises on both engines. */
const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const keyOrder = (a: StoredShadow, b: StoredShadow) =>
  bytewise(a.thingName, b.thingName) || bytewise(a.shadowName, b.shadowName);

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Fixture {
  /** Two stores on two connections (pools) to the same data. */
  a: ShadowStore;
  b: ShadowStore;
  dbA: Database;
  /** PostgreSQL only: a third connection to hold row locks, and the pools' application_name. */
  holder?: pg.Client;
  app?: string;
  close(): Promise<void>;
}

async function sqliteFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-store-'));
  const dbA = await openDatabase({ dataDir: dir, databaseUrl: null, file: 'shadows.db' });
  const dbB = await openDatabase({ dataDir: dir, databaseUrl: null, file: 'shadows.db' });
  return {
    a: await createShadowStore(dbA),
    b: await createShadowStore(dbB),
    dbA,
    async close() {
      await dbA.close();
      await dbB.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresFixture(): Promise<Fixture> {
  const schema = await freshSchema('shadow');
  const app = `shadow-contract-${schema.schema}`;
  const url = `${schema.url}&application_name=${app}`;
  const dbA = await openDatabase({ dataDir: '', databaseUrl: url });
  const dbB = await openDatabase({ dataDir: '', databaseUrl: url });
  const holder = new pg.Client({ connectionString: schema.url });
  await holder.connect();
  return {
    a: await createShadowStore(dbA),
    b: await createShadowStore(dbB),
    dbA,
    holder,
    app,
    async close() {
      await holder.end();
      await dbA.close();
      await dbB.close();
      await schema.drop();
    },
  };
}

describe.each(kinds)('shadow store contract on %s', (kind) => {
  let f: Fixture;
  beforeAll(async () => {
    f = kind === 'sqlite' ? await sqliteFixture() : await postgresFixture();
  });
  afterAll(async () => {
    await f?.close();
  });

  it('gets nothing for a shadow that never existed, and reads back exactly what was put', async () => {
    expect(await f.a.get('get-thing', '')).toBeNull();
    const classic = row('get-thing', '', 1);
    const named = { ...row('get-thing', 'config', 2 ** 40), updatedAt: T0 + 123_456 };
    expect(await f.a.put(classic, null)).toBe(true);
    expect(await f.a.put(named, null)).toBe(true);
    expect(await f.a.get('get-thing', '')).toEqual(classic);
    expect(await f.b.get('get-thing', 'config')).toEqual(named);
    expect(await f.a.get('get-thing', 'other')).toBeNull();
    expect(await f.a.get('other-thing', '')).toBeNull();
  });

  it('writes only when the stored version equals expected (null: no row at all)', async () => {
    const v1 = row('cond-thing', '', 1);
    expect(await f.a.put(v1, null)).toBe(true);
    expect(await f.a.put(row('cond-thing', '', 9), null)).toBe(false); // exists
    expect(await f.a.put(row('cond-thing', '', 3), 2)).toBe(false); // stale expectation
    expect(await f.a.put(row('cond-thing', 'missing', 2), 1)).toBe(false); // no row to update
    expect(await f.a.get('cond-thing', 'missing')).toBeNull();
    expect(await f.a.get('cond-thing', '')).toEqual(v1);
    const v2 = row('cond-thing', '', 2, '{"state":{}}');
    expect(await f.b.put(v2, 1)).toBe(true);
    expect(await f.a.get('cond-thing', '')).toEqual(v2);
    expect(await f.a.put(row('cond-thing', '', 3), 1)).toBe(false); // the version moved on
    expect(await f.a.get('cond-thing', '')).toEqual(v2);
  });

  it('keeps the version in a tombstone: recreate continues the numbering, insert-if-absent refuses', async () => {
    expect(await f.a.put(row('tomb-thing', 'n', 1), null)).toBe(true);
    expect(await f.a.put(row('tomb-thing', 'n', 2), 1)).toBe(true);
    const dead = tombstone('tomb-thing', 'n', 3);
    expect(await f.a.put(dead, 2)).toBe(true);
    expect(await f.b.get('tomb-thing', 'n')).toEqual(dead);
    expect(await f.a.listNames('tomb-thing', { limit: 10 })).toEqual([]);
    expect((await f.a.scan({ limit: 1000 })).some((r) => r.thingName === 'tomb-thing')).toBe(false);
    // A tombstone is a row: "no row may exist" fails, the recreate must name the tombstone's version.
    expect(await f.a.put(row('tomb-thing', 'n', 1), null)).toBe(false);
    const again = row('tomb-thing', 'n', 4);
    expect(await f.a.put(again, 3)).toBe(true);
    expect(await f.a.get('tomb-thing', 'n')).toEqual(again);
    expect(await f.a.listNames('tomb-thing', { limit: 10 })).toEqual(['n']);
  });

  it('two writers that read the same version: exactly one put wins, the other gets false', async () => {
    expect(await f.a.put(row('race-thing', '', 1), null)).toBe(true);
    const [seenA, seenB] = await Promise.all([f.a.get('race-thing', ''), f.b.get('race-thing', '')]);
    expect(seenA!.version).toBe(1);
    expect(seenB!.version).toBe(1);
    const docA = row('race-thing', '', 2, '{"by":"a"}');
    const docB = row('race-thing', '', 2, '{"by":"b"}');
    const results = await Promise.all([f.a.put(docA, 1), f.b.put(docB, 1)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await f.a.get('race-thing', '')).toEqual(results[0] ? docA : docB);
    // The same for creation: two inserts of a new shadow.
    const created = await Promise.all([
      f.a.put(row('race-thing', 'new', 1, '{"by":"a"}'), null),
      f.b.put(row('race-thing', 'new', 1, '{"by":"b"}'), null),
    ]);
    expect(created.filter(Boolean)).toHaveLength(1);
    expect((await f.b.get('race-thing', 'new'))!.document).toBe(created[0] ? '{"by":"a"}' : '{"by":"b"}');
  });

  it('loses no update under many concurrent read-modify-write writers on both connections', async () => {
    const key = ['rmw-thing', 'counter'] as const;
    expect(await f.a.put(row(...key, 0, '{"n":0}'), null)).toBe(true);
    const workers = 8;
    const each = 25;
    let conflicts = 0;
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        const store = w % 2 === 0 ? f.a : f.b;
        for (let done = 0; done < each;) {
          const cur = (await store.get(...key))!;
          const n = (JSON.parse(cur.document!) as { n: number }).n;
          const next = row(...key, cur.version + 1, JSON.stringify({ n: n + 1 }));
          if (await store.put(next, cur.version)) done++;
          else conflicts++;
        }
      }),
    );
    const final = (await f.a.get(...key))!;
    expect(final.version).toBe(workers * each);
    expect(JSON.parse(final.document!)).toEqual({ n: workers * each });
    expect(conflicts).toBeGreaterThan(0); // the writers really raced
  });

  it('decides each of many simultaneous puts as if it ran alone (both engines batch them)', async () => {
    const t = (i: number) => `burst-${i}`;
    for (let i = 0; i < 100; i++) expect(await f.a.put(row(t(i), '', 1), null)).toBe(true);
    const calls: Array<{ p: Promise<boolean>; want: boolean | 'one' }> = [];
    for (let i = 0; i < 100; i++) {
      // Existing shadows: a right and a wrong expectation; new ones: inserts; a taken insert.
      calls.push({ p: f.a.put(row(t(i), '', 2, `{"i":${i}}`), 1), want: true });
      calls.push({ p: f.a.put(row(t(i), 'named', 1), null), want: true });
      if (i % 4 === 0) calls.push({ p: f.a.put(row(t(i), '', 9), 7), want: false });
      if (i % 4 === 1) calls.push({ p: f.a.put(row(t(i), '', 5), null), want: false });
    }
    // The same write twice in one burst: exactly one of them wins.
    const twins = [
      f.a.put(row(t(7), 'twin', 1, '{"n":1}'), null),
      f.a.put(row(t(7), 'twin', 1, '{"n":2}'), null),
    ];
    const results = await Promise.all(calls.map((c) => c.p));
    results.forEach((r, i) => expect(r, `call ${i}`).toBe(calls[i]!.want));
    expect((await Promise.all(twins)).filter(Boolean)).toHaveLength(1);
    const back = await Promise.all(Array.from({ length: 100 }, (_, i) => f.b.get(t(i), '')));
    back.forEach((r, i) => expect(r).toEqual(row(t(i), '', 2, `{"i":${i}}`)));
    const named = await Promise.all(Array.from({ length: 100 }, (_, i) => f.b.get(t(i), 'named')));
    expect(named.every((r, i) => r?.thingName === t(i) && r.version === 1)).toBe(true);
    expect(await Promise.all([f.a.get(t(1), 'none'), f.a.get('burst-x', '')])).toEqual([null, null]);
  });

  it('a put the database refuses fails alone; the rest of its batch is written', async () => {
    const t = (i: number) => `refuse-${i}`;
    // NaN binds as NULL (SQLite: NOT NULL constraint) or 'NaN' (PostgreSQL: not a bigint): the statement
    // fails, and with it the batch it shares (one transaction on SQLite, one statement on PostgreSQL).
    const calls = Array.from({ length: 60 }, (_, i) =>
      f.a.put(i === 30 ? { ...row(t(i), '', 1), version: Number.NaN } : row(t(i), '', 1), null),
    );
    const settled = await Promise.allSettled(calls);
    settled.forEach((s, i) => {
      if (i === 30) expect(s.status, `call ${i}`).toBe('rejected');
      else expect(s, `call ${i}`).toEqual({ status: 'fulfilled', value: true });
    });
    expect(await f.b.get(t(30), '')).toBeNull();
    expect(await f.b.get(t(31), '')).toEqual(row(t(31), '', 1));
  });

  it.runIf(kind === 'postgres')(
    'PostgreSQL: two pools blocked on the same row at once, exactly one wins when it is released',
    async () => {
      const holder = f.holder!;
      const lockWaiters = async () =>
        (
          await holder.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [f.app],
          )
        ).rows[0]!.n;
      // Update race: a third session holds the row lock while both conditional updates queue behind it.
      expect(await f.a.put(row('lock-thing', '', 5), null)).toBe(true);
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM shadows WHERE thing_name = $1 AND shadow_name = $2 FOR UPDATE', [
        'lock-thing',
        '',
      ]);
      const updates = [
        f.a.put(row('lock-thing', '', 6, '{"by":"a"}'), 5),
        f.b.put(row('lock-thing', '', 6, '{"by":"b"}'), 5),
      ];
      await until('both updates to wait on the row lock', async () => (await lockWaiters()) === 2);
      await holder.query('COMMIT');
      const updated = await Promise.all(updates);
      expect(updated.filter(Boolean)).toHaveLength(1);
      expect((await f.a.get('lock-thing', ''))!.document).toBe(updated[0] ? '{"by":"a"}' : '{"by":"b"}');

      // Insert race: an uncommitted insert of the same key holds both; it rolls back and one insert wins.
      await holder.query('BEGIN');
      await holder.query(
        'INSERT INTO shadows (thing_name, shadow_name, version, document, updated_at) VALUES ($1, $2, 1, $3, 0)',
        ['lock-thing', 'fresh', '{"by":"holder"}'],
      );
      const inserts = [
        f.a.put(row('lock-thing', 'fresh', 1, '{"by":"a"}'), null),
        f.b.put(row('lock-thing', 'fresh', 1, '{"by":"b"}'), null),
      ];
      await until('both inserts to wait on the uncommitted key', async () => (await lockWaiters()) === 2);
      await holder.query('ROLLBACK');
      const inserted = await Promise.all(inserts);
      expect(inserted.filter(Boolean)).toHaveLength(1);
      expect((await f.b.get('lock-thing', 'fresh'))!.document).toBe(
        inserted[0] ? '{"by":"a"}' : '{"by":"b"}',
      );
    },
  );

  it.runIf(kind === 'sqlite')(
    "SQLite: a put while another context's transaction is open waits for it and survives its rollback",
    async () => {
      const db = f.dbA;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const tx = db.transaction(async (t) => {
        await t.run(
          'INSERT INTO shadows (thing_name, shadow_name, version, document, updated_at) VALUES ($1, $2, 1, $3, 0)',
          ['tx-thing', 'marker', '{}'],
        );
        await gate;
        throw new Error('roll back');
      });
      await until('the transaction to open', async () => db.kind === 'sqlite' && db.raw.inTransaction);
      let settled = false;
      const put = f.a.put(row('tx-thing', 'mine', 1), null).finally(() => (settled = true));
      const seen = f.a.get('tx-thing', 'marker');
      await new Promise((r) => setTimeout(r, 20));
      expect(settled).toBe(false);
      release();
      await expect(tx).rejects.toThrow('roll back');
      expect(await put).toBe(true);
      expect(await seen).toBeNull(); // never saw the uncommitted row
      expect(await f.b.get('tx-thing', 'mine')).toEqual(row('tx-thing', 'mine', 1));
      expect(await f.b.get('tx-thing', 'marker')).toBeNull();
    },
  );

  it('lists live shadow names in order, classic first, paged by `after` (exclusive)', async () => {
    const t = 'list-thing';
    for (const name of ['d', 'b', '', 'a', 'c', 'bb'])
      expect(await f.a.put(row(t, name, 1), null)).toBe(true);
    expect(await f.a.put(tombstone(t, 'bb', 2), 1)).toBe(true);
    expect(await f.a.put(row('list-thing2', 'a', 1), null)).toBe(true);
    expect(await f.a.put(row('list-thin', 'zz', 1), null)).toBe(true);
    expect(await f.a.listNames(t, { limit: 100 })).toEqual(['', 'a', 'b', 'c', 'd']);
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = await f.b.listNames(t, { after, limit: 2 });
      if (page.length === 0) break;
      pages.push(page);
      after = page[page.length - 1];
    }
    expect(pages).toEqual([['', 'a'], ['b', 'c'], ['d']]);
    expect(await f.a.listNames(t, { after: '', limit: 2 })).toEqual(['a', 'b']);
    expect(await f.a.listNames(t, { after: 'b', limit: 10 })).toEqual(['c', 'd']); // tombstone 'bb' skipped
    expect(await f.a.listNames(t, { limit: 0 })).toEqual([]);
    expect(await f.a.listNames('no-such-thing', { limit: 10 })).toEqual([]);
  });

  it('scans live rows in (thing, shadow) order, paged by key, across things', async () => {
    const p = 'scan-';
    const expected: StoredShadow[] = [];
    for (const thing of [`${p}b`, `${p}a`, `${p}a-1`, `${p}c`])
      for (const name of ['x', '', 'y']) {
        const r = row(thing, name, 1);
        expect(await f.a.put(r, null)).toBe(true);
        expected.push(r);
      }
    expect(await f.a.put(tombstone(`${p}b`, 'y', 2), 1)).toBe(true);
    const live = expected.filter((r) => !(r.thingName === `${p}b` && r.shadowName === 'y')).sort(keyOrder);
    const all: StoredShadow[] = [];
    let after: { thingName: string; shadowName: string } | undefined;
    for (;;) {
      const page = await f.b.scan({ after, limit: 3 });
      expect(page.length).toBeLessThanOrEqual(3);
      if (page.length === 0) break;
      all.push(...page);
      after = page[page.length - 1]!;
    }
    for (let i = 1; i < all.length; i++) expect(keyOrder(all[i - 1]!, all[i]!)).toBeLessThan(0);
    expect(all.every((r) => r.document !== null && r.deletedAt === null)).toBe(true);
    // Tuple order, not string order: ('scan-a', 'y') comes before ('scan-a-1', '').
    expect(all.filter((r) => r.thingName.startsWith(p))).toEqual(live);
    expect(await f.a.scan({ limit: 0 })).toEqual([]);
  });

  it('deleteThing removes every row of the thing, tombstones included, and nothing else', async () => {
    const t = 'del-thing';
    for (const name of ['', 'a', 'b']) expect(await f.a.put(row(t, name, 1), null)).toBe(true);
    expect(await f.a.put(tombstone(t, 'b', 2), 1)).toBe(true);
    expect(await f.a.put(row(`${t}-keep`, '', 1), null)).toBe(true);
    expect(await f.b.deleteThing(t)).toBe(3);
    for (const name of ['', 'a', 'b']) expect(await f.a.get(t, name)).toBeNull();
    expect(await f.a.get(`${t}-keep`, '')).toEqual(row(`${t}-keep`, '', 1));
    expect(await f.a.deleteThing(t)).toBe(0);
    // With the tombstone gone, the shadow can be created afresh.
    expect(await f.a.put(row(t, 'b', 1), null)).toBe(true);
  });

  it('purgeTombstones removes tombstones deleted before the cut-off only', async () => {
    const t = 'purge-thing';
    expect(await f.a.put(row(t, 'old', 1), null)).toBe(true);
    expect(await f.a.put(tombstone(t, 'old', 2, 10), 1)).toBe(true);
    expect(await f.a.put(row(t, 'edge', 1), null)).toBe(true);
    expect(await f.a.put(tombstone(t, 'edge', 2, 15), 1)).toBe(true);
    expect(await f.a.put(row(t, 'live', 1), null)).toBe(true);
    expect(await f.b.purgeTombstones(15)).toBe(1);
    expect(await f.a.get(t, 'old')).toBeNull();
    expect(await f.a.get(t, 'edge')).toEqual(tombstone(t, 'edge', 2, 15));
    expect(await f.a.purgeTombstones(16)).toBe(1);
    expect(await f.a.get(t, 'edge')).toBeNull();
    expect(await f.a.get(t, 'live')).toEqual(row(t, 'live', 1));
    // After the purge the numbering restarts (reference §8.2: after 48 h a recreated shadow starts over).
    expect(await f.a.put(row(t, 'old', 1), null)).toBe(true);
  });

  it('stores large documents (64 KB and 1 MB, multi-byte) intact, and updates them', async () => {
    const doc = (size: number, seed: string) =>
      JSON.stringify({
        state: { reported: { blob: `${seed}é温😀`.repeat(Math.ceil(size / 10)) /* 10 bytes each */ } },
      });
    const big = doc(64 * 1024, 'a');
    const huge = doc(1024 * 1024, 'b');
    expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
    expect(await f.a.put(row('big-thing', '', 1, big), null)).toBe(true);
    expect((await f.b.get('big-thing', ''))!.document).toBe(big);
    expect(await f.a.put(row('big-thing', '', 2, huge), 1)).toBe(true);
    expect((await f.b.get('big-thing', ''))!.document).toBe(huge);
    expect(await f.a.put(row('big-thing', '', 3, big), 2)).toBe(true);
    expect(await f.b.get('big-thing', '')).toEqual(row('big-thing', '', 3, big));
  });

  it('keeps unicode thing and shadow names exact and orders them bytewise (code point order)', async () => {
    const t = 'thing-温度-Ω';
    // UTF-16 order would put '😀' (U+1F600, surrogates D83D DE00) before U+FFFD; code point order does not.
    for (const name of ['😀', 'é', '', '\uFFFD', 'z', 'e\u0301']) {
      expect(await f.a.put(row(t, name, 1, JSON.stringify({ name })), null)).toBe(true);
    }
    expect(await f.b.listNames(t, { limit: 10 })).toEqual(['', 'e\u0301', 'z', 'é', '\uFFFD', '😀']);
    expect(await f.b.listNames(t, { after: 'é', limit: 10 })).toEqual(['\uFFFD', '😀']);
    expect(await f.b.get(t, '😀')).toEqual(row(t, '😀', 1, JSON.stringify({ name: '😀' })));
    // 'é' precomposed and 'e' + combining accent are different names.
    expect(JSON.parse((await f.b.get(t, 'e\u0301'))!.document!)).toEqual({ name: 'e\u0301' });
    expect(await f.a.get('thing-温度-ω', '')).toBeNull(); // names are case-sensitive
    const scanned = (await f.a.scan({ after: { thingName: t, shadowName: 'z' }, limit: 3 })).filter(
      (r) => r.thingName === t,
    );
    expect(scanned.map((r) => r.shadowName)).toEqual(['é', '\uFFFD', '😀']);
  });

  it('opens again on the same database without migrating twice', async () => {
    const again = await createShadowStore(f.dbA);
    expect(await again.get('get-thing', '')).toEqual(row('get-thing', '', 1));
  });
});
