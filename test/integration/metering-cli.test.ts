import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { registerUsage } from '../../src/cli/usage.js';
import { runCli } from '../helpers/cli.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * `thingstead usage ...` and `thingstead quota ...` against a running platform, in-process, with the
 * endpoint and credentials found in the data directory as a user runs them. The ledger is flushed on its
 * own (metering.flushMs 300: usage is queryable without asking), and telemetry is exported continuously.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform({ metering: { flushMs: 300, export: { intervalMs: 300, lagMs: 0 } } });
});
afterAll(async () => p?.stop());

const cli = (...args: string[]) => runCli([registerUsage], p.endpoints.dataDir, args);

test('usage is queryable without a manual flush, as a table, JSON and CSV; quota set/get; cost; export', async () => {
  const c = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'cli-dev', protocolVersion: 5 });
  for (let i = 0; i < 3; i++) await c.publishAsync('cli/x', 'hello', { qos: 1 });
  await c.endAsync();

  // No flush asked for: the ledger reaches the database on its own within metering.flushMs.
  const json = await waitFor(
    async () => {
      const r = await cli('usage', '--thing', 'cli-dev', '--group-by', 'thing,unit', '--json');
      const rows = JSON.parse(r.out).rows as Array<{ unit: string; amount: number }>;
      return rows.find((x) => x.unit === 'messages_in' && x.amount === 4) ? rows : null;
    },
    10_000,
    'usage of cli-dev in the ledger',
  );
  expect(json.find((r) => r.unit === 'connection_minutes')?.amount).toBe(1);

  const csv = await cli(
    'usage',
    '--thing',
    'cli-dev',
    '--group-by',
    'thing,unit',
    '--unit',
    'messages_in',
    '--csv',
  );
  expect(csv.out.trim().split('\n')).toEqual(['thing,unit,amount', 'cli-dev,messages_in,4']);
  const table = await cli('usage', '--thing', 'cli-dev');
  expect(table.out).toMatch(/DAY\s+THING\s+UNIT\s+AMOUNT/);
  const badUnit = await cli('usage', '--unit', 'msgs');
  expect(badUnit.error?.message).toContain("InvalidRequestException: unknown usage unit 'msgs'");

  const set = await cli('quota', 'set', '--thing', 'cli-dev', 'publishRate', '2');
  expect(JSON.parse(set.out)).toEqual({ thingName: 'cli-dev', limits: { publishRate: 2 } });
  expect(JSON.parse((await cli('quota', 'get', '--thing', 'cli-dev')).out)).toMatchObject({
    limits: { publishRate: 2 },
    defaults: { publishRate: 100 },
  });
  expect((await cli('quota', 'set', '--thing', 'cli-dev', 'publishRat', '2')).error?.message).toContain(
    'unknown limit publishRat; limits are connectRate, publishRate',
  );
  expect((await cli('quota', 'set', 'publishRate', '2')).error?.message).toBe(
    'name exactly one of --thing or --billing-group',
  );
  const off = await cli('quota', 'set', '--thing', 'cli-dev', 'publishRate', 'off');
  expect(JSON.parse(off.out)).toEqual({ thingName: 'cli-dev', limits: {} });

  const cost = await cli(
    'usage',
    'cost',
    '--prices',
    'pricing/aws-iot-core.json',
    '--thing',
    'cli-dev',
    '--by',
    'thing',
  );
  expect(cost.out).toContain('AWS IoT Core prices (https://aws.amazon.com/iot-core/pricing/');
  expect(cost.out).toMatch(/Messaging \(per million 5 KB messages\)\s+4\s+0\.000004\s+NOT CONFIRMED/);
  expect(cost.out).toMatch(/total \d+\.\d{6} USD/);
  expect(cost.out).toMatch(/cli-dev\s+0\.0000/);
  const azure = await cli('usage', 'cost', '--prices', 'pricing/azure-iot-hub.json', '--thing', 'cli-dev');
  expect(azure.out).toContain('S1 x 1');

  const exported = await cli('usage', 'export', '--kind', 'usage', '--from', '-1h');
  expect(exported.out).toMatch(/^usage: \d+ rows in [1-9]\d* file\(s\)/);
  expect(exported.out).toContain("read_parquet('");
});

test('continuous export: telemetry written now lands in a Parquet partition of its thing within an interval', async () => {
  const now = Date.now();
  await p.timeseries.write([{ thing: 'cont-1', metric: 'rpm', ts: now - 50, value: 1200 }]);
  const dir = join(p.endpoints.dataDir, 'exports', 'telemetry');
  const found = await waitFor(
    () => {
      if (!existsSync(dir)) return null;
      const files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
      return files.find((f) => f.includes('thing=cont-1') && f.endsWith('.parquet')) ?? null;
    },
    10_000,
    'the continuous export of cont-1',
  );
  expect(found).toMatch(/^date=\d{4}-\d{2}-\d{2}\/thing=cont-1\/part-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.parquet$/);
  const state = JSON.parse(readFileSync(join(p.endpoints.dataDir, 'exports', '_export_state.json'), 'utf8'));
  expect(state.telemetry).toBeGreaterThan(now - 1000);
});
