import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { registerRules } from '../../src/cli/rules.js';
import { registerTimeseries } from '../../src/cli/ts.js';
import { runCli } from '../helpers/cli.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * `thingstead rules ...` and `thingstead ts ...` against a running platform, in-process, with the endpoint
 * and credentials found in the data directory as a user runs them.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform();
});
afterAll(async () => p?.stop());

const cli = (...args: string[]) => runCli([registerRules, registerTimeseries], p.endpoints.dataDir, args);

test('rules create/list/get/test/metrics/trace/disable/enable/delete', async () => {
  const created = await cli(
    'rules',
    'create',
    'cli_rule',
    '--sql',
    "SELECT temperature, topic(2) AS dev FROM 'cli/+/t' WHERE temperature > 10",
    '--sql-version',
    '2016-03-23',
    '--action',
    '{"timeseries":{"thingName":"${topic(2)}","metrics":["temperature"]}}',
    '--action',
    '{"republish":{"topic":"cli-out/${topic(2)}"}}',
  );
  expect(created).toEqual({ out: 'created rule cli_rule' });

  const bad = await cli('rules', 'create', 'bad_rule', '--sql', "SELECT * FORM 'x'");
  expect(bad.error?.message).toMatch(/^SqlParseException: Expected FROM.* at position 9/);

  const list = (await cli('rules', 'list')).out.split('\n');
  expect(list[0]).toMatch(/^RULENAME\s+TOPICPATTERN\s+RULEDISABLED\s+CREATEDAT$/);
  expect(list[1]).toMatch(/^cli_rule\s+cli\/\+\/t\s+false\s+\d{4}-/);
  expect((await cli('rules', 'list', '--topic', 'cli/a/t')).out).toMatch(/cli_rule/);
  expect((await cli('rules', 'list', '--topic', 'other')).out).toBe('(none)');

  const got = JSON.parse((await cli('rules', 'get', 'cli_rule', '--json')).out);
  expect(got.rule).toMatchObject({ ruleName: 'cli_rule', awsIotSqlVersion: '2016-03-23' });

  const tested = (
    await cli('rules', 'test', 'cli_rule', '--payload', '{"temperature":42}', '--topic', 'cli/d1/t')
  ).out;
  expect(tested).toContain('output: {"temperature":42,"dev":"d1"}');
  expect(tested).toMatch(/action 1: timeseries -> timeseries/);
  expect(tested).toMatch(/action 2: republish -> cli-out\/d1/);
  expect((await cli('rules', 'test', 'cli_rule', '--payload', '{"temperature":1}')).out).toMatch(/^no match/);

  const device = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'cli-dev' });
  await device.publishAsync('cli/d2/t', JSON.stringify({ temperature: 30 }), { qos: 1 });
  await device.endAsync();
  await waitFor(
    async () => JSON.parse((await cli('rules', 'metrics', 'cli_rule', '--json')).out).actionOk === 2,
  );
  const metrics = (await cli('rules', 'metrics', 'cli_rule')).out;
  expect(metrics).toMatch(/matched\s+1/);
  expect(metrics).toMatch(/dropped\s+none/);
  const trace = (await cli('rules', 'trace', 'cli_rule')).out;
  expect(trace).toMatch(/cli\/d2\/t\s+client=cli-dev/);
  expect(trace).toMatch(/republish cli-out\/d2: ok/);

  expect((await cli('rules', 'disable', 'cli_rule')).out).toBe('disabled rule cli_rule');
  expect((await cli('rules', 'list', '--disabled')).out).toMatch(/cli_rule\s+cli\/\+\/t\s+true/);
  expect((await cli('rules', 'enable', 'cli_rule')).out).toBe('enabled rule cli_rule');
  expect((await cli('rules', 'delete', 'cli_rule')).out).toBe('deleted rule cli_rule');
});

test('ts write/series/query (table, json, csv)/retention', async () => {
  const t0 = Date.UTC(2026, 1, 1);
  for (let i = 0; i < 6; i++)
    await cli(
      'ts',
      'write',
      '--thing',
      'cli-pump',
      '--metric',
      'rpm',
      '--value',
      String(100 + i * 10),
      '--ts',
      String(t0 + i * 30_000),
    );
  await cli(
    'ts',
    'write',
    '--thing',
    'cli-pump',
    '--metric',
    'state',
    '--value',
    'running',
    '--ts',
    String(t0),
  );
  const series = (await cli('ts', 'series', '--thing', 'cli-pump')).out.split('\n');
  expect(series[0]).toMatch(/^THING\s+METRIC\s+POINTS\s+FIRSTTS\s+LASTTS$/);
  expect(series[1]).toMatch(/^cli-pump\s+rpm\s+6\s+2026-02-01T00:00:00.000Z/);
  const q = (
    await cli(
      'ts',
      'query',
      '--metric',
      'rpm',
      '--thing',
      'cli-pump',
      '--from',
      String(t0),
      '--to',
      String(t0 + 180_000),
      '--step',
      '1m',
      '--agg',
      'max',
    )
  ).out.split('\n');
  expect(q).toEqual([
    expect.stringMatching(/^TIME\s+SERIES\s+MAX$/),
    expect.stringMatching(/^2026-02-01T00:00:00.000Z\s+cli-pump\s+110$/),
    expect.stringMatching(/130$/),
    expect.stringMatching(/150$/),
  ]);
  const csv = (
    await cli(
      'ts',
      'query',
      '--metric',
      'rpm',
      '--thing',
      'cli-pump',
      '--from',
      String(t0),
      '--to',
      String(t0 + 60_000),
      '--format',
      'csv',
    )
  ).out;
  expect(csv).toBe(`thing,metric,ts,value\ncli-pump,rpm,${t0},100\ncli-pump,rpm,${t0 + 30_000},110\n`);
  const json = JSON.parse(
    (
      await cli(
        'ts',
        'query',
        '--metric',
        'state',
        '--thing',
        'cli-pump',
        '--from',
        String(t0),
        '--to',
        String(t0 + 1),
        '--json',
      )
    ).out,
  );
  expect(json.points).toEqual([{ thing: 'cli-pump', ts: t0, value: 'running' }]);
  const ret = (await cli('ts', 'retention', '--raw-max-age', '3650d')).out;
  expect(ret).toMatch(/^rolled up \d+ buckets, deleted 0 raw points/);
});
