import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { openCredentialStore } from '../../src/identity/index.js';
import { openDatabase, type Database } from '../../src/store/index.js';

/** Access keys: AES-256-GCM at rest under <data dir>/master.key, admin key and credentials file on first start. */

const dirs: string[] = [];
const dbs: Database[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'thingstead-keys-'));
  dirs.push(d);
  return d;
};

test('ensureAdmin creates the admin key once and writes the credentials file with mode 0600', async () => {
  const dataDir = tmp();
  const db = await openDatabase({ dataDir, databaseUrl: null });
  dbs.push(db);
  const store = await openCredentialStore({ db, dataDir });
  const first = await store.ensureAdmin({ region: 'eu-west-1' });
  expect(first.created).toBe(true);
  const file = join(dataDir, 'credentials');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readFileSync(file, 'utf8')).toContain(`aws_access_key_id = ${first.accessKeyId}\n`);
  expect(readFileSync(file, 'utf8')).toContain('region = eu-west-1\n');
  const again = await store.ensureAdmin({ region: 'eu-west-1' });
  expect(again).toMatchObject({ created: false, accessKeyId: first.accessKeyId });
  // A deleted credentials file is rewritten from the (decrypted) stored key.
  rmSync(file);
  await store.ensureAdmin({ region: 'eu-west-1' });
  const key = await store.lookup(first.accessKeyId);
  expect(readFileSync(file, 'utf8')).toContain(`aws_secret_access_key = ${key!.secretAccessKey}\n`);
});

test('secrets are encrypted at rest; the wrong master key is reported clearly', async () => {
  const dataDir = tmp();
  const db = await openDatabase({ dataDir, databaseUrl: null });
  dbs.push(db);
  const store = await openCredentialStore({ db, dataDir, cacheMs: 0 });
  const k = await store.create('ops', 'read-only');
  const row = (
    await db.query<{ secret_enc: string }>('SELECT secret_enc FROM access_keys WHERE name = $1', ['ops'])
  )[0]!;
  expect(row.secret_enc).not.toContain(k.secretAccessKey);
  expect(Buffer.from(row.secret_enc, 'base64').length).toBe(12 + 16 + k.secretAccessKey.length);
  expect((await store.lookup(k.accessKeyId))?.secretAccessKey).toBe(k.secretAccessKey);
  writeFileSync(join(dataDir, 'master.key'), '00'.repeat(32));
  const other = await openCredentialStore({ db, dataDir, cacheMs: 0 });
  await expect(other.lookup(k.accessKeyId)).rejects.toThrow(/master\.key is not the key that encrypted it/);
});

test('key names and roles are validated; names are unique', async () => {
  const dataDir = tmp();
  const db = await openDatabase({ dataDir, databaseUrl: null });
  dbs.push(db);
  const store = await openCredentialStore({ db, dataDir });
  await expect(store.create('bad name', 'admin')).rejects.toMatchObject({ name: 'InvalidRequestException' });
  await expect(store.create('x', 'root' as never)).rejects.toMatchObject({ name: 'InvalidRequestException' });
  await store.create('x', 'admin');
  await expect(store.create('x', 'admin')).rejects.toMatchObject({ name: 'ResourceAlreadyExistsException' });
  expect((await store.list()).map((k) => k.name)).toEqual(['x']);
});
