import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { credentialsProfile } from '../../src/identity/index.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * A handful of registry operations through the AWS CLI v2 (Debian `awscli`, /usr/bin/aws) and boto3
 * (Debian `python3-boto3`, /usr/bin/python3), using the shared-credentials file the platform writes.
 * Skipped visibly when the tool is absent (required under CI).
 */

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';

async function hasBoto3(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await run(PYTHON, ['-c', 'import boto3']);
    return true;
  } catch {
    return false;
  }
}

const haveAws = existsSync(AWS);
const haveBoto3 = await hasBoto3();
for (const [ok, what] of [
  [haveAws, `AWS CLI (${AWS}, Debian awscli)`],
  [haveBoto3, `boto3 (${PYTHON} -c 'import boto3', Debian python3-boto3)`],
] as const) {
  if (ok) continue;
  if (process.env.CI === 'true') throw new Error(`${what} is required under CI`);
  console.warn(`SKIPPING: ${what} is not installed`);
}

let h: ApiHarness;
let credFile: string;
let badFile: string;
beforeAll(async () => {
  h = await startApi('sqlite');
  credFile = join(h.dataDir, 'credentials');
  writeFileSync(credFile, credentialsProfile('default', h.admin, 'us-east-1'), { mode: 0o600 });
  badFile = join(h.dataDir, 'bad-credentials');
  writeFileSync(
    badFile,
    credentialsProfile('default', { ...h.admin, secretAccessKey: 'wrong'.repeat(8) }, 'us-east-1'),
  );
});
afterAll(async () => h?.close());

/** Environment with only what the tools need (no ambient AWS settings). */
const env = (file: string) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: h.dataDir,
  AWS_SHARED_CREDENTIALS_FILE: file,
  AWS_CONFIG_FILE: join(h.dataDir, 'no-config'),
  AWS_PAGER: '',
});

async function aws(
  args: string[],
  file = credFile,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(AWS, [...args, '--endpoint-url', h.endpoint, '--output', 'json'], { env: env(file) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(!haveAws)('AWS CLI v2', () => {
  test('create-thing, describe-thing, list-things (auto-paginated), search-index, as printed in the banner', async () => {
    const c = await aws([
      'iot',
      'create-thing',
      '--thing-name',
      'cli-t1',
      '--attribute-payload',
      '{"attributes":{"color":"red"}}',
    ]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).thingArn).toBe('arn:aws:iot:us-east-1:123456789012:thing/cli-t1');
    for (let i = 2; i <= 5; i++)
      expect((await aws(['iot', 'create-thing', '--thing-name', `cli-t${i}`])).code).toBe(0);
    const d = JSON.parse((await aws(['iot', 'describe-thing', '--thing-name', 'cli-t1'])).stdout);
    expect(d).toMatchObject({ thingName: 'cli-t1', version: 1, attributes: { color: 'red' } });
    // --page-size makes the CLI follow nextToken across pages.
    const l = JSON.parse((await aws(['iot', 'list-things', '--page-size', '2'])).stdout);
    expect(l.things.map((t: any) => t.thingName)).toEqual(['cli-t1', 'cli-t2', 'cli-t3', 'cli-t4', 'cli-t5']);
    const s = JSON.parse(
      (await aws(['iot', 'search-index', '--query-string', 'attributes.color:red'])).stdout,
    );
    expect(s.things.map((t: any) => t.thingName)).toEqual(['cli-t1']);
  });

  test('errors carry the AWS error code: not found, already exists, version conflict, bad signature', async () => {
    const nf = await aws(['iot', 'describe-thing', '--thing-name', 'nope']);
    expect(nf.code).not.toBe(0);
    expect(nf.stderr).toMatch(
      /\(ResourceNotFoundException\) when calling the DescribeThing operation: Thing nope cannot be found/,
    );
    await aws([
      'iot',
      'create-thing',
      '--thing-name',
      'cli-dup',
      '--attribute-payload',
      '{"attributes":{"a":"1"}}',
    ]);
    const dup = await aws([
      'iot',
      'create-thing',
      '--thing-name',
      'cli-dup',
      '--attribute-payload',
      '{"attributes":{"a":"2"}}',
    ]);
    expect(dup.stderr).toMatch(/ResourceAlreadyExistsException/);
    const vc = await aws(['iot', 'update-thing', '--thing-name', 'cli-dup', '--expected-version', '9']);
    expect(vc.stderr).toMatch(/VersionConflictException/);
    const bad = await aws(['iot', 'list-things'], badFile);
    expect(bad.stderr).toMatch(/InvalidSignatureException/);
  });
});

const BOTO = `
import json, sys, boto3, botocore
c = boto3.client('iot', endpoint_url=sys.argv[1], region_name='us-east-1')
out = {}
c.create_thing(thingName='boto-1', attributePayload={'attributes': {'k': 'v'}})
c.create_thing_group(thingGroupName='boto-g')
c.add_thing_to_thing_group(thingGroupName='boto-g', thingName='boto-1')
out['inGroup'] = c.list_things_in_thing_group(thingGroupName='boto-g')['things']
out['describe'] = c.describe_thing(thingName='boto-1')
out['groupDate'] = str(type(c.describe_thing_group(thingGroupName='boto-g')['thingGroupMetadata']['creationDate']).__name__)
try:
    c.describe_thing(thingName='missing')
except c.exceptions.ResourceNotFoundException as e:
    out['notFound'] = e.response['Error']['Code']
try:
    c.update_thing(thingName='boto-1', expectedVersion=42)
except c.exceptions.VersionConflictException as e:
    out['conflict'] = e.response['Error']['Code']
try:
    c.list_things(nextToken='garbage')
except c.exceptions.InvalidRequestException as e:
    out['badToken'] = e.response['Error']['Code']
out['search'] = [t['thingName'] for t in c.search_index(queryString='thingGroupNames:boto-g')['things']]
print(json.dumps(out, default=str))
`;

describe.skipIf(!haveBoto3)('boto3', () => {
  test('things, groups, search and modeled exception classes', async () => {
    const r = await run(PYTHON, ['-c', BOTO, h.endpoint], { env: env(credFile) });
    const out = JSON.parse(r.stdout);
    expect(out.inGroup).toEqual(['boto-1']);
    expect(out.describe).toMatchObject({ thingName: 'boto-1', attributes: { k: 'v' }, version: 1 });
    expect(out.groupDate).toBe('datetime');
    expect(out.notFound).toBe('ResourceNotFoundException');
    expect(out.conflict).toBe('VersionConflictException');
    expect(out.badToken).toBe('InvalidRequestException');
    expect(out.search).toEqual(['boto-1']);
  });
});
