/**
 * Rules and time-series benchmark. Run: `npx tsx bench/rules.ts [--messages 50000] [--points 200000]
 * [--stores sqlite,postgres] [--rate 2000] [--seconds 5]`. Writes bench/results/rules.json.
 *
 * 1. SQL: evaluations per second of three compiled rules on one parsed payload (CPU only).
 * 2. Engine: messages per second through a set of 3 rules (time-series store, a filtered republish and a
 *    transforming republish) fed by the real broker in-process, counted until every action completed and
 *    the time-series writer committed.
 * 3. Time-series ingest: points per second through the batch writer on SQLite and PostgreSQL.
 * 4. End to end over MQTT (MQTT.js over TCP into the whole platform, QoS 0 at a fixed rate): publish-to-
 *    queryable latency, from the publish call to the point being committed in the store (p50/p99).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { anonymousLoopbackHooks, createBroker } from '../src/mqtt/index.js';
import { createLogger, createMetricsRegistry } from '../src/observability/index.js';
import { compileSql, parsePayload, RulesEngine } from '../src/rules/index.js';
import { openDatabase, type Database } from '../src/store/index.js';
import { createTimeseries } from '../src/timeseries/index.js';
import { startTestPlatform } from '../test/helpers/platform.js';
import { arg, percentile } from './lib/common.js';

const MESSAGES = Number(arg('messages', '50000'));
const POINTS = Number(arg('points', '200000'));
const STORES = arg('stores', 'sqlite,postgres').split(',');
const RATE = Number(arg('rate', '2000'));
const SECONDS = Number(arg('seconds', '5'));
const PG_URL = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const logger = createLogger('silent');
const log = (s: string) => process.stderr.write(s + '\n');
const results: Record<string, unknown> = {};

const pct = percentile;

const RULES = [
  {
    name: 'store',
    sql: "SELECT temperature, humidity FROM 'bench/+/telemetry'",
    actions: [{ timeseries: { thingName: '${topic(2)}', timestamp: '${ts}' } }],
  },
  {
    name: 'alert',
    sql: "SELECT * FROM 'bench/+/telemetry' WHERE temperature > 80",
    actions: [{ republish: { topic: 'alerts/${topic(2)}' } }],
  },
  {
    name: 'transform',
    sql: "SELECT topic(2) AS dev, temperature * 1.8 + 32 AS f, CASE WHEN humidity > 50 THEN 'wet' ELSE 'dry' END AS state FROM 'bench/#'",
    actions: [{ republish: { topic: 'derived/${topic(2)}' } }],
  },
];

async function freshPg(prefix: string): Promise<{ url: string; drop(): Promise<void> } | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
  } catch {
    log(`PostgreSQL unreachable at ${PG_URL}; skipped`);
    return null;
  }
  const schema = `bench_${prefix}_${Date.now().toString(36)}`;
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  return {
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`,
    async drop() {
      const d = new pg.Client({ connectionString: PG_URL });
      await d.connect();
      await d.query(`DROP SCHEMA ${schema} CASCADE`);
      await d.end();
    },
  };
}

function sqlBench(): void {
  const compiled = RULES.map((r) => compileSql(r.sql, '2016-03-23'));
  const payload = Buffer.from(JSON.stringify({ temperature: 85.5, humidity: 61, ts: Date.now() }));
  const ctx = { topic: 'bench/dev-1/telemetry', payload, clientId: 'dev-1', timestamp: Date.now() };
  const n = 300_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const parsed = parsePayload(payload);
    for (const c of compiled) c.evaluate(ctx, parsed);
  }
  const s = (performance.now() - t0) / 1000;
  results.sql = {
    messagesPerSecond: Math.round(n / s),
    evaluationsPerSecond: Math.round((n * 3) / s),
    note: 'parse payload once + 3 rules, one core',
  };
  log(`SQL: ${Math.round(n / s)} messages/s through 3 compiled rules (payload parse included)`);
}

async function engineBench(kind: 'sqlite' | 'postgres'): Promise<void> {
  const pgSchema = kind === 'postgres' ? await freshPg('eng') : null;
  if (kind === 'postgres' && !pgSchema) return;
  const dir = mkdtempSync(join(tmpdir(), 'bench-rules-'));
  const db = await openDatabase({ dataDir: dir, databaseUrl: pgSchema?.url ?? null });
  const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
  const metrics = createMetricsRegistry({ processMetrics: false });
  const broker = createBroker({ config, logger, metrics, db, hooks: anonymousLoopbackHooks(true) });
  await broker.start();
  const ts = await createTimeseries({
    db,
    logger,
    writer: { maxBatch: 5000, flushMs: 20, maxPending: 1_000_000 },
  });
  const engine = await RulesEngine.start({
    db,
    broker,
    logger,
    metrics,
    timeseries: ts,
    queueSize: 3 * MESSAGES,
    maxInFlightPerAction: 100_000,
  });
  for (const r of RULES)
    await engine.createRule(r.name, {
      sql: r.sql,
      awsIotSqlVersion: '2016-03-23',
      actions: r.actions,
    });
  const publisher = { clientId: 'bench', principal: { kind: 'anonymous' as const, id: 'anonymous' } };
  const base = Date.UTC(2026, 0, 1);
  const payloads = Array.from({ length: MESSAGES }, (_, i) =>
    Buffer.from(JSON.stringify({ temperature: 60 + (i % 40), humidity: 40 + (i % 30), ts: base + i })),
  );
  const t0 = performance.now();
  // Publish in slices so the engine's drain interleaves as it would with socket traffic.
  for (let i = 0; i < MESSAGES; i += 1000) {
    for (let j = i; j < Math.min(MESSAGES, i + 1000); j++)
      broker.publish(
        { topic: `bench/dev-${j % 100}/telemetry`, payload: payloads[j]!, qos: 0, retain: false },
        publisher,
      );
    await new Promise((r) => setImmediate(r));
  }
  await engine.idle();
  await ts.writer.flush();
  const s = (performance.now() - t0) / 1000;
  const stats = RULES.map((r) => engine.stats(r.name));
  const ok = stats.reduce((n, st) => n + st.actionOk, 0);
  const dropped = stats.reduce((n, st) => n + Object.values(st.dropped).reduce((a, b) => a + (b ?? 0), 0), 0);
  if (dropped) log(JSON.stringify(stats.map((st) => st.dropped)));
  results[`engine_${kind}`] = {
    messages: MESSAGES,
    seconds: Number(s.toFixed(2)),
    messagesPerSecond: Math.round(MESSAGES / s),
    actionsOk: ok,
    dropped,
    pointsStored: ts.writer.stats.written,
  };
  log(
    `engine (${kind}): ${Math.round(MESSAGES / s)} messages/s through 3 rules; ${ok} actions ok, ${dropped} dropped, ${ts.writer.stats.written} points`,
  );
  await engine.close();
  await ts.close();
  await broker.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  await pgSchema?.drop();
}

async function ingestBench(kind: 'sqlite' | 'postgres'): Promise<void> {
  const pgSchema = kind === 'postgres' ? await freshPg('ts') : null;
  if (kind === 'postgres' && !pgSchema) return;
  const dir = mkdtempSync(join(tmpdir(), 'bench-ts-'));
  const db: Database = await openDatabase({ dataDir: dir, databaseUrl: pgSchema?.url ?? null });
  const ts = await createTimeseries({
    db,
    logger,
    writer: { maxBatch: 5000, flushMs: 10, maxPending: 2_000_000 },
  });
  const base = Date.UTC(2026, 0, 1);
  const n = kind === 'postgres' ? Math.min(POINTS, 100_000) : POINTS;
  const batch = 500;
  const t0 = performance.now();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < n; i += batch) {
    const points = [];
    for (let j = i; j < Math.min(n, i + batch); j++)
      points.push({
        thing: `dev-${j % 1000}`,
        metric: 'temperature',
        ts: base + Math.floor(j / 1000) * 1000,
        value: j % 97,
      });
    writes.push(ts.write(points));
    if (writes.length >= 40) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  const s = (performance.now() - t0) / 1000;
  // Query check: downsample one day of one metric across all things.
  const q0 = performance.now();
  const series = await ts.downsample({
    things: [],
    metric: 'temperature',
    from: base,
    to: base + 86_400_000,
    stepMs: 60_000,
    agg: 'avg',
    groupBy: 'all',
  });
  const qms = performance.now() - q0;
  results[`ingest_${kind}`] = {
    points: n,
    seconds: Number(s.toFixed(2)),
    pointsPerSecond: Math.round(n / s),
    downsampleAllMs: Math.round(qms),
    buckets: series[0]?.points.length ?? 0,
  };
  log(
    `time-series ingest (${kind}): ${Math.round(n / s)} points/s (${n} points); downsample of all points to 1-min avg in ${Math.round(qms)} ms`,
  );
  await ts.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  await pgSchema?.drop();
}

async function e2eLatency(): Promise<void> {
  const p = await startTestPlatform({ timeseries: { flushMs: 10 } });
  for (const r of RULES)
    await p.rules.createRule(r.name, {
      sql: r.sql,
      awsIotSqlVersion: '2016-03-23',
      actions: r.actions,
    });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  p.timeseries.tail({ metric: 'temperature' }, (points) => {
    const now = performance.now();
    for (const pt of points) {
      const t = sentAt.get(pt.ts);
      if (t !== undefined) latencies.push(now - t);
    }
  });
  const client = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'bench-e2e' });
  const total = RATE * SECONDS;
  const base = Date.UTC(2027, 0, 1);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i / RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const ts = base + i;
    sentAt.set(ts, performance.now());
    client.publish(
      `bench/dev-${i % 50}/telemetry`,
      JSON.stringify({ temperature: 20 + (i % 10), humidity: 50, ts }),
      { qos: 0 },
    );
  }
  const deadline = performance.now() + 15_000;
  while (latencies.length < total && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const elapsed = (performance.now() - t0) / 1000;
  await client.endAsync();
  results.e2e = {
    rate: RATE,
    sent: total,
    stored: latencies.length,
    messagesPerSecond: Math.round(latencies.length / elapsed),
    publishToQueryableMs: {
      p50: Number(pct(latencies, 50).toFixed(1)),
      p99: Number(pct(latencies, 99).toFixed(1)),
      max: Number(Math.max(...latencies).toFixed(1)),
    },
  };
  log(
    `e2e MQTT -> 3 rules -> store at ${RATE} msg/s: ${latencies.length}/${total} stored; publish-to-queryable p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms`,
  );
  await p.stop();
}

log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? ''}), node ${process.version}`);
sqlBench();
for (const kind of STORES as Array<'sqlite' | 'postgres'>) await engineBench(kind);
for (const kind of STORES as Array<'sqlite' | 'postgres'>) await ingestBench(kind);
await e2eLatency();
results.machine = {
  cores: cpus().length,
  model: cpus()[0]?.model,
  node: process.version,
  at: new Date().toISOString(),
};
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });
writeFileSync(new URL('rules.json', out), JSON.stringify(results, null, 2) + '\n');
log('wrote bench/results/rules.json');
