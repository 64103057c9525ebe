import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { UpdateJobExecutionCommand } from '@aws-sdk/client-iot-jobs-data-plane';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/** `thingstead jobs ...` run as the real CLI against a running platform (admin credentials in its data dir). */
const run = promisify(execFile);
let h: JobsHarness;
beforeAll(async () => {
  h = await jobsPlatform();
  await h.things('cli1', 'cli2');
  await h.group('cligroup', ['cli2']);
});
afterAll(() => h?.platform.stop());

const args = (rest: string[]) => [
  '--import',
  'tsx',
  'src/cli/main.ts',
  'jobs',
  ...rest,
  '--data-dir',
  h.platform.endpoints.dataDir,
];
async function cli(rest: string[]) {
  try {
    const r = await run(process.execPath, args(rest), { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('create, list, executions, describe --watch live until COMPLETED, cancel', async () => {
  const created = await cli([
    ...['create', 'cli-job', '--target', 'thing/cli1', '--target', 'group/cligroup'],
    ...['--document', '{"op":"${aws:iot:parameter:op}"}', '--param', 'op=reboot', '--rate', '100'],
  ]);
  expect(created.code, created.stderr).toBe(0);
  expect(created.stdout).toMatch(/created job cli-job \(arn:aws:iot:us-east-1:000000000000:job\/cli-job\)/);
  const list = await cli(['list']);
  expect(list.stdout).toMatch(/^cli-job\s+IN_PROGRESS\s+SNAPSHOT/m);
  const execs = await cli(['executions', 'cli-job']);
  expect(execs.stdout).toMatch(/^cli1\s+cli-job\s+QUEUED\s+1/m);
  expect(execs.stdout).toMatch(/^cli2\s+cli-job\s+QUEUED\s+1/m);

  const watch = spawn(process.execPath, args(['describe', 'cli-job', '--watch', '--interval', '100']));
  let out = '';
  watch.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number>((r) => watch.on('exit', (code) => r(code ?? -1)));
  await waitFor(() => out.includes('0/2 done'), 30_000, 'first progress line');
  await h.data.send(
    new UpdateJobExecutionCommand({ thingName: 'cli1', jobId: 'cli-job', status: 'SUCCEEDED' }),
  );
  await waitFor(() => out.includes('1/2 done'), 10_000, 'progress after one success');
  await h.data.send(new UpdateJobExecutionCommand({ thingName: 'cli2', jobId: 'cli-job', status: 'FAILED' }));
  expect(await exited).toBe(0);
  expect(out).toMatch(/COMPLETED {2}2\/2 done {2}succeeded 1, failed 1/);

  await cli(['create', 'cli-cancel', '--target', 'thing/cli1', '--document', '{}']);
  const canceled = await cli(['cancel', 'cli-cancel', '--reason-code', 'OPS']);
  expect(canceled.code, canceled.stderr).toBe(0);
  const d = await cli(['describe', 'cli-cancel']);
  expect(d.stdout).toMatch(/status\s+CANCELED/);
  expect(d.stdout).toMatch(/reasonCode\s+OPS/);
  const bad = await cli(['create', 'cli-bad', '--target', 'thing/nope', '--document', '{}']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/ResourceNotFoundException/);
}, 120_000);
