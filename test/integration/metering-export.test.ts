import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import mqtt from 'mqtt';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

// Analytics exports: DuckDB reads the exported Parquet files (Hive partitions date=/thing=, or
// date=/billing_group=) directly and returns the same aggregates as the time-series query API and the same
// totals as the usage API.

const DAY = 86_400_000;
const FROM = Date.UTC(2030, 2, 10);
const TO = FROM + 2 * DAY;
let p: TestPlatform;
let api: (method: string, path: string, req?: Parameters<typeof signedFetch>[3]) => Promise<any>;
let duck: DuckDBConnection;

beforeAll(async () => {
  p = await startTestPlatform();
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  const credentials = {
    accessKeyId: profile.aws_access_key_id!,
    secretAccessKey: profile.aws_secret_access_key!,
  };
  api = (method, path, req = {}) =>
    signedFetch({ endpoint: p.endpoints.http, region: 'us-east-1', ...credentials }, method, path, req);
  duck = await (await DuckDBInstance.create(':memory:')).connect();
});
afterAll(async () => {
  duck?.closeSync();
  await p?.stop();
});

async function rows(sql: string): Promise<Array<Record<string, unknown>>> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJson();
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => join(dir, f));
}

test('DuckDB reads the telemetry export and gets the aggregates the time-series API gives, per thing and day', async () => {
  // Two things, two days, a numeric metric every 7 minutes (values with fractions) and a text metric.
  const points = [];
  for (const thing of ['sensor-1', 'sensor-2'])
    for (let ts = FROM; ts < TO; ts += 7 * 60_000) {
      const i = (ts - FROM) / 60_000;
      points.push({
        thing,
        metric: 'temperature',
        ts,
        value: Math.round((20 + Math.sin(i) * 5) * 1000) / 1000,
      });
      if (i % 70 === 0) points.push({ thing, metric: 'state', ts, value: i % 140 === 0 ? 'on' : 'off' });
    }
  await p.timeseries.write(points);

  const result = await api('POST', '/usage/export', { body: { kind: 'telemetry', from: FROM, to: TO } });
  const out = result.exports[0];
  expect(out.rows).toBe(points.length);
  const dir = join(result.dir, 'telemetry');
  expect(
    files(dir)
      .map((f) => relative(dir, f).split('/').slice(0, 2).join('/'))
      .sort(),
  ).toEqual([
    'date=2030-03-10/thing=sensor-1',
    'date=2030-03-10/thing=sensor-2',
    'date=2030-03-11/thing=sensor-1',
    'date=2030-03-11/thing=sensor-2',
  ]);

  const glob = `${dir}/**/*.parquet`;
  const schema = await rows(`DESCRIBE SELECT * FROM read_parquet('${glob}', hive_partitioning = true)`);
  expect(Object.fromEntries(schema.map((c) => [c.column_name, c.column_type]))).toMatchObject({
    ts: 'TIMESTAMP WITH TIME ZONE',
    metric: 'VARCHAR',
    value: 'DOUBLE',
    value_text: 'VARCHAR',
    thing: 'VARCHAR',
  });

  const fromDuck = await rows(`
    SELECT thing, CAST(date AS VARCHAR) AS day, count(*) AS n, avg(value) AS avg, min(value) AS min,
           max(value) AS max, sum(value) AS sum
    FROM read_parquet('${glob}', hive_partitioning = true)
    WHERE metric = 'temperature' GROUP BY thing, date ORDER BY thing, date`);
  expect(fromDuck).toHaveLength(4);

  let compared = 0;
  for (const agg of ['count', 'avg', 'min', 'max', 'sum'] as const) {
    const q = await api('GET', '/timeseries/query', {
      query: {
        metric: 'temperature',
        thing: 'sensor-1,sensor-2',
        from: String(FROM),
        to: String(TO),
        step: '1d',
        agg,
        groupBy: 'thing',
      },
    });
    for (const s of q.series as Array<{ key: string; points: Array<{ ts: number; value: number }> }>)
      for (const point of s.points) {
        const day = new Date(point.ts).toISOString().slice(0, 10);
        const d = fromDuck.find((r) => r.thing === s.key && r.day === day)!;
        const duckValue = Number(d[agg === 'count' ? 'n' : agg]);
        expect(duckValue).toBeCloseTo(point.value, 6);
        compared++;
      }
  }
  expect(compared).toBe(5 * 4); // five aggregates, two things, two days
  // Text measures keep their text; the numeric column is null for them.
  const text = await rows(
    `SELECT value_text, count(*) AS n, count(value) AS numeric FROM read_parquet('${glob}', hive_partitioning = true)
     WHERE metric = 'state' GROUP BY value_text ORDER BY value_text`,
  );
  expect(text.map((r) => [r.value_text, Number(r.numeric)])).toEqual([
    ['off', 0],
    ['on', 0],
  ]);
});

test('DuckDB reads the usage export (date=/billing_group= partitions) and sums to what GET /usage says', async () => {
  const c = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'export-dev', protocolVersion: 5 });
  for (let i = 0; i < 5; i++) await c.publishAsync('e/x', Buffer.alloc(6000), { qos: 1 });
  await c.endAsync();
  const now = Date.now();
  const result = await api('POST', '/usage/export', {
    body: { kind: 'usage', from: now - 3_600_000, to: now + 3_600_000 },
  });
  const dir = join(result.dir, 'usage');
  expect(files(dir).some((f) => f.includes('billing_group=__HIVE_DEFAULT_PARTITION__'))).toBe(true);
  const fromDuck = await rows(`
    SELECT unit, sum(amount) AS amount FROM read_parquet('${dir}/**/*.parquet', hive_partitioning = true)
    WHERE thing = 'export-dev' GROUP BY unit ORDER BY unit`);
  const fromApi = await api('GET', '/usage', {
    query: {
      thing: 'export-dev',
      from: String(now - 3_600_000),
      to: String(now + 3_600_000),
      groupBy: 'unit',
    },
  });
  expect(Object.fromEntries(fromDuck.map((r) => [r.unit, Number(r.amount)]))).toEqual(
    Object.fromEntries(
      (fromApi.rows as Array<{ unit: string; amount: number }>).map((r) => [r.unit, r.amount]),
    ),
  );
  // 5 publishes of 6003 bytes: 2 units each, plus the CONNECT.
  expect(fromDuck.find((r) => r.unit === 'messages_in')).toMatchObject({ amount: '11' });
  await expect(api('POST', '/usage/export', { body: { kind: 'logs' } })).rejects.toMatchObject({
    message: expect.stringContaining('export kind must be one of'),
  });
});
