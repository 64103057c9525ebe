/**
 * Shadow store benchmark: get+put pairs per second (one shadow update's storage cost: read the row, write
 * the next version conditionally) on SQLite and PostgreSQL. Run: `npx tsx bench/shadow-store.ts
 * [--stores sqlite,postgres] [--things 10000] [--seconds 5] [--concurrency 1,64] [--doc-bytes 700]`.
 *
 * The store is the real one (src/shadow/store-sql.ts) over the platform's own `openDatabase`: SQLite is a
 * file in a temporary directory (WAL, synchronous=NORMAL, as `thingstead up` opens it), PostgreSQL a
 * throwaway schema (THINGSTEAD_TEST_DATABASE_URL or the local default) through the platform's pool (10
 * connections). A fleet of `--things` classic shadows is loaded first; then, for each concurrency level,
 * that many loops each pick a random thing, `get` it and `put` version+1 with `expected` = the version read,
 * for `--seconds`. Loops pick random things, so conflicts are rare and counted (a conflict is a pair too:
 * the storage did the work). Reports pairs/s, the mean time per pair, and p50/p99 of a pair's latency.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createShadowStore } from '../src/shadow/store-sql.js';
import type { StoredShadow } from '../src/shadow/store.js';
import { openDatabase } from '../src/store/index.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const STORES = arg('stores', 'sqlite,postgres').split(',');
const THINGS = Number(arg('things', '10000'));
const SECONDS = Number(arg('seconds', '5'));
const CONCURRENCY = arg('concurrency', '1,64').split(',').map(Number);
const DOC_BYTES = Number(arg('doc-bytes', '700'));

/** A shadow document of about `DOC_BYTES` in the shape document.ts stores (state, metadata, versions). */
function documentOf(version: number): string {
  const ts = Math.floor(Date.now() / 1000);
  const doc = {
    state: {
      desired: { led: 'on', interval: 30, mode: 'eco' },
      reported: { led: 'off', interval: 30, mode: 'eco', temperature: 21.5 + (version % 10), pad: '' },
    },
    metadata: {
      desired: { led: { timestamp: ts }, interval: { timestamp: ts }, mode: { timestamp: ts } },
      reported: {
        led: { timestamp: ts },
        interval: { timestamp: ts },
        mode: { timestamp: ts },
        temperature: { timestamp: ts },
        pad: { timestamp: ts },
      },
    },
    version,
  };
  const base = JSON.stringify(doc).length;
  doc.state.reported.pad = 'x'.repeat(Math.max(0, DOC_BYTES - base));
  return JSON.stringify(doc);
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
const thingName = (i: number) => `dev-${String(i).padStart(7, '0')}`;

async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_shadow_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return {
    url: `${base}${base.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function benchStore(kind: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-bench-shadow-'));
  const schema = kind === 'postgres' ? await freshPostgres() : null;
  const db = await openDatabase({ dataDir, databaseUrl: schema?.url ?? null });
  const store = await createShadowStore(db);
  const doc = documentOf(1);
  // Documents are built before timing: the figure is the store's cost, not JSON.stringify's.
  const docs = Array.from({ length: 16 }, (_, v) => documentOf(v));
  const row = (i: number, version: number, document: string): StoredShadow => ({
    thingName: thingName(i),
    shadowName: '',
    version,
    document,
    updatedAt: Date.now(),
    deletedAt: null,
  });

  let t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < THINGS) await store.put(row(next++, 1, doc), null);
    }),
  );
  console.log(
    `${kind.padEnd(9)} load ${THINGS} shadows (${doc.length} B, 16 in flight): ` +
      `${Math.round(THINGS / ((performance.now() - t0) / 1000))} inserts/s`,
  );

  for (const concurrency of CONCURRENCY) {
    const latencies: number[] = [];
    let pairs = 0;
    let conflicts = 0;
    const end = performance.now() + SECONDS * 1000;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const i = Math.floor(Math.random() * THINGS);
          const s = performance.now();
          const cur = await store.get(thingName(i), '');
          const ok = await store.put(row(i, cur!.version + 1, docs[(cur!.version + 1) % 16]!), cur!.version);
          latencies.push(performance.now() - s);
          pairs++;
          if (!ok) conflicts++;
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    console.log(
      `${kind.padEnd(9)} get+put, ${String(concurrency).padStart(3)} in flight: ` +
        `${Math.round(pairs / secs).toLocaleString('en-US')} pairs/s ` +
        `(${((secs * 1e6) / pairs).toFixed(1)} µs/pair), latency p50 ${(pct(latencies, 50) * 1000).toFixed(0)} µs ` +
        `p99 ${(pct(latencies, 99) * 1000).toFixed(0)} µs, ${conflicts} conflicts`,
    );
  }

  await db.close();
  await schema?.drop();
  rmSync(dataDir, { recursive: true, force: true });
}

console.log(
  `shadow store bench: ${THINGS} things, ${SECONDS} s per level, documents ~${DOC_BYTES} B, ` +
    `node ${process.version}`,
);
for (const kind of STORES) await benchStore(kind);
