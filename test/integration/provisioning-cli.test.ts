import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { provisioningPlatform, type ProvisioningHarness } from './provisioning-helpers.js';

/**
 * `thingstead provision ...` (issue 12): templates, claim, register, bulk (a local file served to the
 * platform once), and trace: a refused registration is listed with its reason and its steps are printed.
 */
const exec = promisify(execFile);
let h: ProvisioningHarness;
let dir: string;

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'provision',
        ...args,
        '--data-dir',
        h.platform.endpoints.dataDir,
      ],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, timeout: 90_000 },
    );
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

beforeAll(async () => {
  h = await provisioningPlatform();
  dir = mkdtempSync(join(tmpdir(), 'prov-cli-'));
  writeFileSync(
    join(dir, 'template.json'),
    JSON.stringify({
      Parameters: { Serial: { Type: 'String', AllowedPattern: '^[A-Z][0-9]+$' } },
      Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Serial' } } } },
    }),
  );
  writeFileSync(
    join(dir, 'lines.jsonl'),
    ['{"Serial":"L1"}', '{"Serial":"L2"}', '{"Serial":"bad"}'].join('\n'),
  );
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
});

test('templates, claim, register, bulk --file --wait, and trace of a refusal', async () => {
  const created = await cli(
    'templates',
    'create',
    'cli-fleet',
    '--template-file',
    join(dir, 'template.json'),
  );
  expect(created.stdout).toContain('created template cli-fleet');
  expect((await cli('templates', 'list')).stdout).toMatch(/cli-fleet\s+FLEET_PROVISIONING\s+true/);

  const claim = await cli('claim', 'cli-fleet', '--out', join(dir, 'claim'));
  expect(claim.stdout).toContain('claim certificate');
  expect(existsSync(join(dir, 'claim', 'claim.pem'))).toBe(true);
  expect(statSync(join(dir, 'claim', 'claim.key')).mode & 0o077).toBe(0);

  const reg = await cli('register', '--template-file', join(dir, 'template.json'), '--param', 'Serial=R1');
  expect(reg.stdout).toMatch(/thing\s+arn:aws:iot:[^:]+:\d+:thing\/R1/);
  const refused = await cli(
    'register',
    '--template-file',
    join(dir, 'template.json'),
    '--param',
    'Serial=nope',
  );
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('InvalidRequestException');

  const bulk = await cli(
    'bulk',
    'start',
    '--template-file',
    join(dir, 'template.json'),
    '--file',
    join(dir, 'lines.jsonl'),
    '--wait',
  );
  expect(bulk.stdout).toMatch(/Completed\s+100%\s+succeeded 2\s+failed 1/);
  const taskId = /started task (\S+)/.exec(bulk.stdout)![1]!;
  const errors = await cli('bulk', 'report', taskId, '--errors');
  expect(JSON.parse(errors.stdout.trim())).toMatchObject({ referenceId: '3' });

  const list = await cli('trace', '--rejected');
  expect(list.stdout).toMatch(/parameters/);
  const attempt = /([0-9a-f-]{36})\s*$/m.exec(list.stdout)![1]!;
  const one = await cli('trace', attempt);
  expect(one.stdout).toContain('evaluate');
  expect(one.stdout).toContain('refused:');
  expect(one.stdout).toContain('Serial');
}, 180_000);
