import { Command } from 'commander';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { registerKeys } from '../../src/cli/keys.js';
import { registerRegistryCommands } from '../../src/cli/registry.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

/**
 * `thingstead things|types|groups|keys` against a running platform, in-process: endpoint and credentials
 * come from the data directory (endpoints.json, credentials), as a user runs them.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform();
});
afterAll(async () => p?.stop());

async function cli(...args: string[]): Promise<{ out: string; error?: Error }> {
  const program = new Command('thingstead').exitOverride();
  registerRegistryCommands(program);
  registerKeys(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await program.parseAsync(['node', 'thingstead', ...args, '--data-dir', p.endpoints.dataDir]);
    return { out: lines.join('\n') };
  } catch (error) {
    return { out: lines.join('\n'), error: error as Error };
  } finally {
    spy.mockRestore();
  }
}

test('things create/list/describe/update/search/delete with tables and --json', async () => {
  expect((await cli('things', 'create', 'cli-a', '--attr', 'room=kitchen', '--attr', 'fw=1')).out).toMatch(
    /thingArn\s+arn:aws:iot:us-east-1:000000000000:thing\/cli-a/,
  );
  await cli('things', 'create', 'cli-b');
  const table = (await cli('things', 'list')).out.split('\n');
  expect(table[0]).toMatch(/^NAME\s+TYPE\s+VERSION\s+ATTRIBUTES$/);
  expect(table.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['cli-a', 'cli-b']);
  const json = JSON.parse((await cli('things', 'list', '--attribute', 'room=kit*', '--json')).out);
  expect(json.things.map((t: any) => t.thingName)).toEqual(['cli-a']);
  const upd = JSON.parse((await cli('things', 'update', 'cli-a', '--attr', 'fw=2', '--merge', '--json')).out);
  expect(upd).toMatchObject({ version: 2, attributes: { room: 'kitchen', fw: '2' } });
  const search = JSON.parse((await cli('things', 'search', 'attributes.fw>1', '--json')).out);
  expect(search.things.map((t: any) => t.thingName)).toEqual(['cli-a']);
  const stale = await cli('things', 'update', 'cli-a', '--attr', 'fw=3', '--expected-version', '1');
  expect(stale.error?.message).toMatch(/^VersionConflictException: .*\nSomeone changed it meanwhile/);
  expect((await cli('things', 'delete', 'cli-b')).out).toBe('deleted thing cli-b');
  expect((await cli('things', 'describe', 'cli-b')).error?.message).toMatch(
    /^ResourceNotFoundException: Thing cli-b/,
  );
});

test('types and groups everyday flows', async () => {
  await cli('types', 'create', 'meter', '--description', 'Power meter', '--searchable', 'serial');
  expect((await cli('types', 'list')).out).toMatch(/meter\s+false\s+\S+\s+Power meter/);
  await cli('things', 'create', 'm-1', '--type', 'meter', '--attr', 'serial=S1');
  await cli('groups', 'create', 'plant');
  await cli('groups', 'create', 'hall-1', '--parent', 'plant');
  await cli('groups', 'add', 'hall-1', 'm-1');
  expect((await cli('groups', 'things', 'plant', '--recursive')).out.split('\n')).toEqual(['THING', 'm-1']);
  await cli('groups', 'create-dynamic', 'meters', 'thingTypeName:meter');
  expect(
    JSON.parse((await cli('things', 'groups', 'm-1', '--json')).out).thingGroups.map((g: any) => g.groupName),
  ).toEqual(['hall-1', 'meters']);
  expect((await cli('groups', 'delete', 'meters')).out).toBe('deleted thing group meters');
  await cli('types', 'deprecate', 'meter');
  expect((await cli('types', 'describe', 'meter', '--json')).out).toMatch(/"deprecated": true/);
});

test('keys create --save / list / delete; a read-only profile cannot change things', async () => {
  const created = await cli('keys', 'create', 'ro', '--role', 'read-only', '--save');
  expect(created.out).toMatch(/Created read-only key 'ro'\.\n\s+aws_access_key_id\s+= AKIA/);
  expect((await cli('keys', 'list')).out).toMatch(/\bro\s+read-only/);
  expect((await cli('things', 'list', '--profile', 'ro')).error).toBeUndefined();
  expect((await cli('things', 'create', 'nope', '--profile', 'ro')).error?.message).toMatch(
    /^AccessDeniedException/,
  );
  expect((await cli('keys', 'delete', 'ro')).out).toBe('deleted key ro');
  expect((await cli('keys', 'delete', 'ro')).error?.message).toMatch(/no key with id or name 'ro'/);
});

test('errors say what to do next when nothing runs there', async () => {
  const program = new Command('thingstead').exitOverride();
  registerRegistryCommands(program);
  const err = await program
    .parseAsync(['node', 'thingstead', 'things', 'list', '--data-dir', '/nonexistent-thingstead'])
    .then(
      () => undefined,
      (e: Error) => e,
    );
  expect(err?.message).toMatch(
    /no running Thingstead found: .*endpoints\.json does not exist\.\nStart one with `thingstead up`/,
  );
});
