import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Platform } from '../../src/platform/index.js';

/** The Debian tools the compat tests drive (.ci/run installs them). */
export const AWS = '/usr/bin/aws';
export const PYTHON = '/usr/bin/python3';
export const run = promisify(execFile);

/**
 * Whether the AWS CLI and boto3 are installed. Under CI a missing one fails the file (CI must run them);
 * elsewhere it prints a visible SKIPPING line naming what is skipped, and the tests check the flags.
 * @example const { haveAws, haveBoto3 } = await awsTools('its tagging tests');
 */
export async function awsTools(skipped: string): Promise<{ haveAws: boolean; haveBoto3: boolean }> {
  const haveAws = existsSync(AWS);
  const haveBoto3 =
    existsSync(PYTHON) &&
    (await run(PYTHON, ['-c', 'import boto3']).then(
      () => true,
      () => false,
    ));
  for (const [ok, what] of [
    [haveAws, `AWS CLI (${AWS})`],
    [haveBoto3, `boto3 (${PYTHON})`],
  ] as const) {
    if (ok) continue;
    if (process.env.CI === 'true') throw new Error(`${what} is required under CI`);
    console.warn(`SKIPPING: ${what} is not installed; ${skipped} are skipped`);
  }
  return { haveAws, haveBoto3 };
}

/**
 * The environment for the AWS CLI and boto3 against a test platform: its admin credentials file, its region,
 * no ambient AWS settings, no pager.
 */
export function awsEnv(platform: Platform): Record<string, string> {
  const dataDir = platform.endpoints.dataDir;
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dataDir,
    AWS_SHARED_CREDENTIALS_FILE: platform.endpoints.credentialsFile!,
    AWS_CONFIG_FILE: join(dataDir, 'no-config'),
    AWS_DEFAULT_REGION: platform.config.region,
    AWS_PAGER: '',
  };
}
