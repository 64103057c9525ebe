import { describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { migrate, openDatabase, type Database } from './index.js';

/** A throwaway schema per run so parallel test files never collide. */
async function freshPostgres(): Promise<Database> {
  const { url } = await freshSchema('store');
  return openDatabase({ dataDir: '', databaseUrl: url });
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
    if (!(await postgresAvailable('PostgreSQL store tests'))) return;
    await contract(await freshPostgres());
  });
});
