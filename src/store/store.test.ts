import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrate, openDatabase, type Database } from './index.js';

const PG_URL = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    if (process.env.CI) throw new Error(`PostgreSQL required in CI but unreachable at ${PG_URL}`);
    console.warn(`SKIP: PostgreSQL unreachable at ${PG_URL}; PostgreSQL store tests skipped`);
    return false;
  }
}

/** A throwaway schema per run so parallel test files never collide. */
async function freshPostgres(): Promise<Database> {
  const schema = `t_store_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const sep = PG_URL.includes('?') ? '&' : '?';
  return openDatabase({ dataDir: '', databaseUrl: `${PG_URL}${sep}options=-c%20search_path%3D${schema}` });
}

const migrations = [
  {
    version: 1,
    description: 'items',
    sqlite: 'CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, flag BOOLEAN NOT NULL)',
    postgres: 'CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, flag BOOLEAN NOT NULL)',
  },
  {
    version: 2,
    description: 'index',
    sqlite: 'CREATE INDEX items_n ON items (n)',
    postgres: 'CREATE INDEX items_n ON items (n)',
  },
];

async function contract(db: Database) {
  await migrate(db, 'demo', migrations);
  await migrate(db, 'demo', migrations); // idempotent
  const applied = await db.query<{ version: number }>(
    'SELECT version FROM schema_migrations WHERE context = $1 ORDER BY version',
    ['demo'],
  );
  expect(applied.map((r) => Number(r.version))).toEqual([1, 2]);
  expect(await db.run('INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)', ['a', 1, true])).toBe(1);
  await expect(
    db.transaction(async (tx) => {
      await tx.run('INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)', ['b', 2, false]);
      throw new Error('roll back');
    }),
  ).rejects.toThrow('roll back');
  // A statement issued outside a transaction while one is open is never swept into its rollback.
  let outside: Promise<number> | undefined;
  await expect(
    db.transaction(async (tx) => {
      outside = db.run('INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)', ['c', 3, true]);
      await tx.run('INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)', ['d', 4, false]);
      throw new Error('roll back again');
    }),
  ).rejects.toThrow('roll back again');
  expect(await outside).toBe(1);
  const rows = await db.query<{ id: string; n: number }>(
    'SELECT id, n FROM items WHERE n >= $1 ORDER BY id',
    [0],
  );
  expect(rows).toEqual([
    { id: 'a', n: 1 },
    { id: 'c', n: 3 },
  ]);
  await db.close();
}

describe('store contract', () => {
  it('SQLite: migrations, portable placeholders, transactions', async () => {
    await contract(await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' }));
  });
  it('PostgreSQL: migrations, portable placeholders, transactions', async () => {
    if (!(await postgresAvailable())) return;
    await contract(await freshPostgres());
  });
});
