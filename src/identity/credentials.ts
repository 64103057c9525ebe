import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { E } from '../errors/index.js';
import type { ChangeChannel } from '../events/index.js';
import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Access keys for the AWS-compatible HTTP APIs (SigV4). Each key has a name and a role (`admin` may do
 * everything, `read-only` only non-mutating operations). Secrets are encrypted at rest with AES-256-GCM
 * under a 32-byte master key kept in `<dataDir>/master.key` (mode 0600); the access key id is the
 * authenticated data, so a ciphertext cannot be moved to another key. On first start an `admin` key is
 * generated and written as an AWS shared-credentials file `<dataDir>/credentials` (mode 0600).
 */

export type AccessKeyRole = 'admin' | 'read-only';

export interface AccessKey {
  readonly accessKeyId: string;
  readonly name: string;
  readonly role: AccessKeyRole;
  readonly createdAt: number;
}

export interface AccessKeyWithSecret extends AccessKey {
  readonly secretAccessKey: string;
}

export interface CredentialStore {
  create(name: string, role: AccessKeyRole): Promise<AccessKeyWithSecret>;
  list(): Promise<AccessKey[]>;
  /** Delete by access key id or name; returns false when no such key. */
  delete(idOrName: string): Promise<boolean>;
  /**
   * The key with its decrypted secret, for SigV4 verification. Cached until an `accessKey` change event
   * (any process on PostgreSQL), and at most `cacheMs` (default 2 s): the bound for a key deleted by
   * `thingstead keys` in another process on SQLite, which has no cross-process events.
   */
  lookup(accessKeyId: string): Promise<AccessKeyWithSecret | undefined>;
  /**
   * Generate the admin key when no key exists yet, and (re)write `<dataDir>/credentials` with the admin
   * key as the [default] profile. Returns the file path and whether a key was created.
   */
  ensureAdmin(options: { region: string }): Promise<{ file: string; created: boolean; accessKeyId: string }>;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'access keys',
    sqlite:
      'CREATE TABLE access_keys (access_key_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, ' +
      'secret_enc TEXT NOT NULL, created_at BIGINT NOT NULL)',
    postgres:
      'CREATE TABLE access_keys (access_key_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, ' +
      'secret_enc TEXT NOT NULL, created_at BIGINT NOT NULL)',
  },
];

export const KEY_NAME_PATTERN = /^[a-zA-Z0-9_.@-]{1,64}$/;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function newAccessKeyId(): string {
  const bytes = randomBytes(16);
  let s = 'AKIA';
  for (const b of bytes) s += BASE32[b % 32];
  return s;
}

const newSecret = () => randomBytes(30).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'b');

/** Load or create the master key file (32 random bytes, hex, mode 0600). */
export function loadMasterKey(dataDir: string): Buffer {
  const file = join(dataDir, 'master.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (key.length !== 32) throw E.MasterKeyInvalid({ file });
    return key;
  }
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

function encrypt(master: Buffer, id: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', master, iv);
  cipher.setAAD(Buffer.from(id));
  const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
}

function decrypt(master: Buffer, id: string, enc: string): string {
  const buf = Buffer.from(enc, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', master, buf.subarray(0, 12));
  decipher.setAAD(Buffer.from(id));
  decipher.setAuthTag(buf.subarray(12, 28));
  return Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8');
}

interface KeyRow {
  access_key_id: string;
  name: string;
  role: string;
  secret_enc: string;
  created_at: number | string;
}

const toKey = (r: KeyRow): AccessKey => ({
  accessKeyId: r.access_key_id,
  name: r.name,
  role: r.role as AccessKeyRole,
  createdAt: Number(r.created_at),
});

/** The shared-credentials file text for one profile (AWS CLI and SDK format). */
export function credentialsProfile(profile: string, key: AccessKeyWithSecret, region?: string): string {
  return (
    `[${profile}]\n` +
    `aws_access_key_id = ${key.accessKeyId}\n` +
    `aws_secret_access_key = ${key.secretAccessKey}\n` +
    (region ? `region = ${region}\n` : '')
  );
}

/**
 * Open the access-key store over the platform database (runs its migrations).
 * @example const creds = await openCredentialStore({ db, dataDir }); await creds.ensureAdmin({ region });
 */
export async function openCredentialStore(options: {
  db: Database;
  dataDir: string;
  cacheMs?: number;
  /** Publishes `accessKey` after create/delete; other processes' events drop their cache entries. */
  events?: ChangeChannel;
}): Promise<CredentialStore> {
  const { db, dataDir } = options;
  await migrate(db, 'identity.access-keys', MIGRATIONS);
  const master = loadMasterKey(dataDir);
  const cacheMs = options.cacheMs ?? 2000;
  const cache = new Map<string, { at: number; key: AccessKeyWithSecret | undefined }>();

  const withSecret = (r: KeyRow): AccessKeyWithSecret => {
    let secretAccessKey: string;
    try {
      secretAccessKey = decrypt(master, r.access_key_id, r.secret_enc);
    } catch {
      // Several nodes on one PostgreSQL must share the master key file.
      throw E.AccessKeyUndecryptable({ accessKeyId: r.access_key_id, keyFile: join(dataDir, 'master.key') });
    }
    return { ...toKey(r), secretAccessKey };
  };

  const store: CredentialStore = {
    async create(name, role) {
      if (!KEY_NAME_PATTERN.test(name)) throw E.AccessKeyName({ name });
      if (role !== 'admin' && role !== 'read-only') throw E.AccessKeyRole({ role });
      const existing = await db.query<KeyRow>('SELECT access_key_id FROM access_keys WHERE name = $1', [
        name,
      ]);
      if (existing.length) throw E.AccessKeyAlreadyExists({ name });
      const key: AccessKeyWithSecret = {
        accessKeyId: newAccessKeyId(),
        secretAccessKey: newSecret(),
        name,
        role,
        createdAt: Date.now(),
      };
      await db.run(
        'INSERT INTO access_keys (access_key_id, name, role, secret_enc, created_at) VALUES ($1, $2, $3, $4, $5)',
        [key.accessKeyId, name, role, encrypt(master, key.accessKeyId, key.secretAccessKey), key.createdAt],
      );
      cache.delete(key.accessKeyId);
      await options.events?.publish({ kind: 'accessKey', accessKeyId: key.accessKeyId });
      return key;
    },
    async list() {
      const rows = await db.query<KeyRow>('SELECT * FROM access_keys ORDER BY created_at, name');
      return rows.map(toKey);
    },
    async delete(idOrName) {
      const rows = await db.query<KeyRow>(
        'SELECT access_key_id FROM access_keys WHERE access_key_id = $1 OR name = $1',
        [idOrName],
      );
      const n = await db.run('DELETE FROM access_keys WHERE access_key_id = $1 OR name = $1', [idOrName]);
      cache.clear();
      for (const r of rows)
        await options.events?.publish({ kind: 'accessKey', accessKeyId: r.access_key_id, deleted: true });
      return n > 0;
    },
    async lookup(accessKeyId) {
      const hit = cache.get(accessKeyId);
      const now = Date.now();
      if (hit && now - hit.at < cacheMs) return hit.key;
      const rows = await db.query<KeyRow>('SELECT * FROM access_keys WHERE access_key_id = $1', [
        accessKeyId,
      ]);
      const key = rows[0] ? withSecret(rows[0]) : undefined;
      if (cache.size > 10_000) cache.clear();
      cache.set(accessKeyId, { at: now, key });
      return key;
    },
    async ensureAdmin({ region }) {
      const file = join(dataDir, 'credentials');
      const rows = await db.query<KeyRow>('SELECT * FROM access_keys WHERE name = $1', ['admin']);
      let created = false;
      let key: AccessKeyWithSecret;
      if (rows[0]) key = withSecret(rows[0]);
      else if ((await db.query('SELECT access_key_id FROM access_keys LIMIT 1')).length === 0) {
        key = await store.create('admin', 'admin');
        created = true;
      } else {
        // Keys exist but the operator deleted 'admin': respect that and leave the file alone.
        return { file, created: false, accessKeyId: '' };
      }
      if (created || !existsSync(file)) {
        writeFileSync(file, credentialsProfile('default', key, region), { mode: 0o600 });
        chmodSync(file, 0o600);
      }
      return { file, created, accessKeyId: key.accessKeyId };
    },
  };
  options.events?.subscribe(['accessKey'], (e, origin) => {
    if (e.kind === 'resync') cache.clear();
    else if (origin === 'remote') cache.delete(e.accessKeyId);
  });
  return store;
}
