import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database } from '../store/index.js';
import { createTimeseries, percentile, type Timeseries } from './index.js';
import { createLogger } from '../observability/index.js';

// One contract suite for both stores (CONVENTIONS #5): SQLite (embedded) and PostgreSQL (partitioned).
const T0 = Date.UTC(2026, 0, 1); // aligned to a day
const MIN = 60_000;

async function openSqlite() {
  const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
  return { db, drop: async () => undefined };
}
async function openPostgres() {
  const s = await freshSchema('ts');
  const db = await openDatabase({ dataDir: '', databaseUrl: s.url });
  return { db, drop: () => s.drop() };
}

const pgUp = await postgresAvailable('time-series PostgreSQL contract suite');
const engines = [['sqlite', openSqlite] as const, ...(pgUp ? [['postgres', openPostgres] as const] : [])];

describe.each(engines)('time-series store contract (%s)', (kind, open) => {
  let db: Database;
  let ts: Timeseries;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ db, drop } = await open());
    ts = await createTimeseries({ db, logger: createLogger('silent') });
    // t1: one point per 10 s over 10 minutes, value = minute index * 10 + second/10
    const points = [];
    for (let i = 0; i < 60; i++)
      points.push({ thing: 't1', metric: 'temperature', ts: T0 + i * 10_000, value: i });
    for (let i = 0; i < 10; i++)
      points.push({ thing: 't2', metric: 'temperature', ts: T0 + i * MIN, value: 100 + i });
    points.push({ thing: 't1', metric: 'state', ts: T0 + 5, value: 'on' });
    points.push({ thing: 't1', metric: 'state', ts: T0 + MIN + 5, value: 'off' });
    // a point on the next day (another partition on PostgreSQL)
    points.push({ thing: 't1', metric: 'temperature', ts: T0 + 86_400_000 + 1, value: -1 });
    await ts.write(points);
  });
  afterAll(async () => {
    await ts.close();
    await db.close();
    await drop();
  });

  it('reports its engine', () => {
    expect(ts.store.kind).toBe(kind);
  });

  it('raw range: inclusive from, exclusive to, ordered, limited', async () => {
    const rows = await ts.queryRange({ things: ['t1'], metric: 'temperature', from: T0, to: T0 + MIN });
    expect(rows.map((r) => r.value)).toEqual([0, 1, 2, 3, 4, 5]);
    const desc = await ts.queryRange({
      things: ['t1'],
      metric: 'temperature',
      from: T0,
      to: T0 + MIN,
      order: 'desc',
      limit: 2,
    });
    expect(desc.map((r) => r.value)).toEqual([5, 4]);
    const all = await ts.queryRange({ things: [], metric: 'temperature', from: T0, to: T0 + 1 });
    expect(all.map((r) => r.thing).sort()).toEqual(['t1', 't2']);
  });

  it('string measures keep their type', async () => {
    const rows = await ts.queryRange({ things: ['t1'], metric: 'state', from: T0, to: T0 + 2 * MIN });
    expect(rows.map((r) => r.value)).toEqual(['on', 'off']);
    const last = await ts.downsample({
      things: ['t1'],
      metric: 'state',
      from: T0,
      to: T0 + 2 * MIN,
      stepMs: 2 * MIN,
      agg: 'last',
      groupBy: 'thing',
    });
    expect(last[0]!.points).toEqual([{ ts: T0, value: 'off' }]);
  });

  it('rewriting a point (at-least-once retry) replaces it instead of duplicating', async () => {
    await ts.write([{ thing: 't3', metric: 'm', ts: T0, value: 1 }]);
    await ts.write([
      { thing: 't3', metric: 'm', ts: T0, value: 2 },
      { thing: 't3', metric: 'm', ts: T0, value: 3 },
    ]);
    const rows = await ts.queryRange({ things: ['t3'], metric: 'm', from: T0, to: T0 + 1 });
    expect(rows).toEqual([{ thing: 't3', metric: 'm', ts: T0, value: 3 }]);
  });

  it('downsamples by step with avg, min, max, sum, count, last', async () => {
    const q = {
      things: ['t1'],
      metric: 'temperature',
      from: T0,
      to: T0 + 3 * MIN,
      stepMs: MIN,
      groupBy: 'thing' as const,
    };
    const avg = await ts.downsample({ ...q, agg: 'avg' });
    expect(avg).toEqual([
      {
        key: 't1',
        points: [
          { ts: T0, value: 2.5 },
          { ts: T0 + MIN, value: 8.5 },
          { ts: T0 + 2 * MIN, value: 14.5 },
        ],
      },
    ]);
    expect((await ts.downsample({ ...q, agg: 'min' }))[0]!.points.map((p) => p.value)).toEqual([0, 6, 12]);
    expect((await ts.downsample({ ...q, agg: 'max' }))[0]!.points.map((p) => p.value)).toEqual([5, 11, 17]);
    expect((await ts.downsample({ ...q, agg: 'sum' }))[0]!.points.map((p) => p.value)).toEqual([15, 51, 87]);
    expect((await ts.downsample({ ...q, agg: 'count' }))[0]!.points.map((p) => p.value)).toEqual([6, 6, 6]);
    expect((await ts.downsample({ ...q, agg: 'last' }))[0]!.points.map((p) => p.value)).toEqual([5, 11, 17]);
  });

  it('percentiles p50, p95, p99', async () => {
    const q = {
      things: ['t1'],
      metric: 'temperature',
      from: T0,
      to: T0 + 10 * MIN,
      stepMs: 10 * MIN,
      groupBy: 'thing' as const,
    };
    const values = Array.from({ length: 60 }, (_, i) => i);
    expect((await ts.downsample({ ...q, agg: 'p50' }))[0]!.points[0]!.value).toBeCloseTo(
      percentile(values, 0.5),
    );
    expect((await ts.downsample({ ...q, agg: 'p95' }))[0]!.points[0]!.value).toBeCloseTo(56.05);
    expect((await ts.downsample({ ...q, agg: 'p99' }))[0]!.points[0]!.value).toBeCloseTo(58.41);
  });

  it('groups by thing, or over all things asked for (a thing group)', async () => {
    const q = {
      things: ['t1', 't2'],
      metric: 'temperature',
      from: T0,
      to: T0 + MIN,
      stepMs: MIN,
      agg: 'count' as const,
    };
    const byThing = await ts.downsample({ ...q, groupBy: 'thing' });
    expect(byThing.map((s) => [s.key, s.points[0]!.value])).toEqual([
      ['t1', 6],
      ['t2', 1],
    ]);
    const all = await ts.downsample({ ...q, groupBy: 'all' }, 'floor-1');
    expect(all).toEqual([{ key: 'floor-1', points: [{ ts: T0, value: 7 }] }]);
  });

  it('lists series', async () => {
    const series = await ts.listSeries('t1');
    expect(series.map((s) => `${s.metric}:${s.points}`)).toEqual(['state:2', 'temperature:61']);
  });

  it('retention rolls raw points into rollups; aggregates still answer, percentiles need raw', async () => {
    const now = T0 + 86_400_000 + 1000;
    const policy = { rawMaxAgeMs: now - (T0 + 5 * MIN), rollupStepMs: MIN, rollupMaxAgeMs: 0 };
    const before = await ts.downsample({
      things: ['t1'],
      metric: 'temperature',
      from: T0,
      to: T0 + 10 * MIN,
      stepMs: 10 * MIN,
      agg: 'avg',
      groupBy: 'thing',
    });
    const r = await ts.applyRetention(policy, now);
    expect(r.watermark).toBe(T0 + 5 * MIN);
    expect(r.deleted).toBeGreaterThan(0);
    const raw = await ts.queryRange({ things: ['t1'], metric: 'temperature', from: T0, to: T0 + 10 * MIN });
    expect(raw[0]!.ts).toBe(T0 + 5 * MIN);
    const q = {
      things: ['t1'],
      metric: 'temperature',
      from: T0,
      to: T0 + 10 * MIN,
      stepMs: 10 * MIN,
      groupBy: 'thing' as const,
    };
    expect(await ts.downsample({ ...q, agg: 'avg' })).toEqual(before);
    expect((await ts.downsample({ ...q, agg: 'count' }))[0]!.points[0]!.value).toBe(60);
    expect((await ts.downsample({ ...q, agg: 'min' }))[0]!.points[0]!.value).toBe(0);
    expect((await ts.downsample({ ...q, agg: 'last' }))[0]!.points[0]!.value).toBe(59);
    // minute buckets from rollups
    const perMin = await ts.downsample({ ...q, stepMs: MIN, to: T0 + 2 * MIN, agg: 'max' });
    expect(perMin[0]!.points.map((p) => p.value)).toEqual([5, 11]);
    // string measures' last survives rollup
    const state = await ts.downsample({
      things: ['t1'],
      metric: 'state',
      from: T0,
      to: T0 + 2 * MIN,
      stepMs: 2 * MIN,
      agg: 'last',
      groupBy: 'thing',
    });
    expect(state[0]!.points[0]!.value).toBe('off');
    // running it again is idempotent
    await ts.applyRetention(policy, now);
    expect(await ts.downsample({ ...q, agg: 'avg' })).toEqual(before);
  });

  it('the batch writer announces committed points to the live tail', async () => {
    const seen: number[] = [];
    const stop = ts.tail({ thing: 'tail-1' }, (pts) => seen.push(...pts.map((p) => p.value as number)));
    await ts.write([
      { thing: 'tail-1', metric: 'm', ts: T0 + 1, value: 1 },
      { thing: 'other', metric: 'm', ts: T0 + 1, value: 2 },
    ]);
    stop();
    expect(seen).toEqual([1]);
  });
});
