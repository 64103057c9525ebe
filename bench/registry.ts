/**
 * Registry benchmark: CreateThing rate, ListThings and SearchIndex latency (p50/p99) on a fleet of N things
 * (default 100k), on SQLite and PostgreSQL. Run: `npx tsx bench/registry.ts [--things 100000]
 * [--stores sqlite,postgres] [--http-creates 3000] [--samples 300]`.
 *
 * The fleet is loaded through the registry in-process (the same code path the API handler calls, with
 * 16 creates in flight); then `--http-creates` more CreateThing calls go through the AWS SDK over HTTP
 * (SigV4 verified) with 16 in flight, and ListThings / SearchIndex are timed through the SDK one call at a
 * time. PostgreSQL uses a throwaway schema (THINGSTEAD_TEST_DATABASE_URL or the local default).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CreateThingCommand, IoTClient, ListThingsCommand, SearchIndexCommand } from '@aws-sdk/client-iot';
import { createAwsApi, createHttpServer } from '../src/api/index.js';
import { openCredentialStore } from '../src/identity/index.js';
import { createLogger, createMetricsRegistry } from '../src/observability/index.js';
import { createRegistry, registryOperations } from '../src/registry/index.js';
import { openDatabase } from '../src/store/index.js';
import { arg } from './lib/common.js';

const N = Number(arg('things', '100000'));
const HTTP_CREATES = Number(arg('http-creates', '3000'));
const SAMPLES = Number(arg('samples', '300'));
const STORES = arg('stores', 'sqlite,postgres').split(',');
const CONCURRENCY = 16;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}
const ms = (v: number) => `${v.toFixed(2)} ms`;

async function pool(total: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await fn(next++);
    }),
  );
}

async function timed(
  samples: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ p50: number; p99: number }> {
  const t: number[] = [];
  for (let i = 0; i < samples; i++) {
    const s = performance.now();
    await fn(i);
    t.push(performance.now() - s);
  }
  return { p50: pct(t, 50), p99: pct(t, 99) };
}

async function benchStore(kind: string): Promise<Record<string, string>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-bench-'));
  let databaseUrl: string | null = null;
  let dropSchema = async () => {};
  if (kind === 'postgres') {
    const base = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    databaseUrl = `${base}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    dropSchema = async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    };
  }
  const db = await openDatabase({ dataDir, databaseUrl });
  const logger = createLogger('silent');
  const metrics = createMetricsRegistry({ processMetrics: false });
  const credentials = await openCredentialStore({ db, dataDir });
  const key = await credentials.create('bench', 'admin');
  const registry = await createRegistry({ db, region: 'us-east-1', accountId: '123456789012' });
  const http = createHttpServer({ logger, metrics, health: () => [] });
  http.use(createAwsApi({ operations: registryOperations(registry), credentials, logger, metrics }));
  const addr = await http.listen('127.0.0.1', 0);
  const iot = new IoTClient({
    endpoint: `http://127.0.0.1:${addr.port}`,
    region: 'us-east-1',
    maxAttempts: 1,
    credentials: key,
  });
  const models = ['a1', 'b2', 'c3', 'd4'];
  const attrs = (i: number) => ({
    model: models[i % 4]!,
    temp: String(i % 100),
    serial: `S${String(i).padStart(7, '0')}`,
  });
  const name = (i: number) => `dev-${String(i).padStart(7, '0')}`;
  const r: Record<string, string> = { store: kind, things: String(N) };

  let t0 = performance.now();
  await pool(N, (i) =>
    registry.createThing({ thingName: name(i), attributePayload: { attributes: attrs(i) } }),
  );
  let secs = (performance.now() - t0) / 1000;
  r['CreateThing in-process'] = `${Math.round(N / secs)}/s`;

  t0 = performance.now();
  await pool(HTTP_CREATES, (i) =>
    iot.send(new CreateThingCommand({ thingName: `http-${i}`, attributePayload: { attributes: attrs(i) } })),
  );
  secs = (performance.now() - t0) / 1000;
  r['CreateThing via SDK/HTTP'] = `${Math.round(HTTP_CREATES / secs)}/s`;

  // ListThings: random page starts (keyset tokens), 100 per page; and the attribute filter.
  const tokenAt = (i: number) => Buffer.from(JSON.stringify({ k: name(i) })).toString('base64url');
  const list = await timed(SAMPLES, () =>
    iot.send(new ListThingsCommand({ maxResults: 100, nextToken: tokenAt(Math.floor(Math.random() * N)) })),
  );
  r['ListThings p50/p99 (100/page)'] = `${ms(list.p50)} / ${ms(list.p99)}`;
  const listFilter = await timed(Math.min(SAMPLES, 50), () =>
    iot.send(new ListThingsCommand({ maxResults: 100, attributeName: 'serial', attributeValue: 'S0012345' })),
  );
  r['ListThings attribute filter p50/p99'] = `${ms(listFilter.p50)} / ${ms(listFilter.p99)}`;

  const queries = [
    'attributes.serial:S0012345',
    'attributes.model:b2 AND attributes.temp:[10 TO 20]',
    'thingName:dev-00123* OR attributes.temp>98',
    'NOT attributes.model:a1',
    'attributes.temp>1000', // matches nothing and has no posting list: the worst case, a full scan
  ];
  for (const q of queries) {
    const s = await timed(Math.ceil(SAMPLES / queries.length), () =>
      iot.send(new SearchIndexCommand({ queryString: q, maxResults: 100 })),
    );
    r[`SearchIndex "${q}" p50/p99`] = `${ms(s.p50)} / ${ms(s.p99)}`;
  }

  // Server-side time per operation (the dispatcher's histogram): excludes the SDK client sharing this process.
  const hist = (await metrics.getSingleMetric('thingstead_api_request_seconds')!.get()).values;
  for (const opName of ['CreateThing', 'ListThings', 'SearchIndex']) {
    const of = (suffix: string) =>
      hist.find(
        (v) =>
          (v as { metricName?: string }).metricName === `thingstead_api_request_seconds_${suffix}` &&
          v.labels.operation === opName,
      )?.value ?? 0;
    r[`${opName} server-side mean`] = ms((of('sum') / Math.max(1, of('count'))) * 1000);
  }

  iot.destroy();
  await http.close();
  await registry.close();
  await db.close();
  await dropSchema();
  rmSync(dataDir, { recursive: true, force: true });
  return r;
}

const results: Array<Record<string, string>> = [];
for (const kind of STORES) {
  console.error(`benchmarking ${kind} with ${N} things ...`);
  const r = await benchStore(kind);
  results.push(r);
  for (const [k, v] of Object.entries(r)) console.log(`${kind.padEnd(9)} ${k.padEnd(70)} ${v}`);
}
