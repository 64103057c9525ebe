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
  await batches(db);
  await db.close();
}

/** `batch`: statements in order in one transaction, a guard statement, rollback, never inside another's transaction. */
async function batches(db: Database) {
  const insert = (id: string, n: number) => ({
    sql: 'INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)',
    params: [id, n, true],
  });
  const bump = (id: string, ifN: number) => ({
    sql: 'UPDATE items SET n = n + 1 WHERE id = $1 AND n = $2',
    params: [id, ifN],
  });
  const ids = async () =>
    (
      await db.query<{ id: string; n: number }>('SELECT id, n FROM items WHERE id >= $1 ORDER BY id', ['e'])
    ).map((r) => `${r.id}${r.n}`);
  expect(await db.batch([insert('e', 10), insert('f', 20)])).toEqual([1, 1]);
  // The guard changed nothing (stale n): the rest are skipped.
  expect(await db.batch([bump('e', 99), insert('g', 30)], { guard: true })).toEqual([0, 0]);
  // The guard matched: the rest run.
  expect(await db.batch([bump('e', 10), insert('g', 30)], { guard: true })).toEqual([1, 1]);
  // Without a guard a statement that changes nothing does not stop the others.
  expect(await db.batch([bump('e', 99), bump('f', 20)])).toEqual([0, 1]);
  // A failing statement (duplicate key) rolls back the ones before it.
  await expect(db.batch([bump('e', 11), insert('f', 0)])).rejects.toThrow();
  expect(await ids()).toEqual(['e11', 'f21', 'g30']);
  // A batch issued while a transaction is open waits for it and is not swept into its rollback.
  let batched: Promise<number[]> | undefined;
  await expect(
    db.transaction(async (tx) => {
      batched = db.batch([insert('h', 40)]);
      await tx.run('INSERT INTO items (id, n, flag) VALUES ($1, $2, $3)', ['i', 50, false]);
      throw new Error('roll back the transaction');
    }),
  ).rejects.toThrow('roll back the transaction');
  expect(await batched).toEqual([1]);
  expect(await ids()).toEqual(['e11', 'f21', 'g30', 'h40']);
}

describe('store contract', () => {
  it('SQLite: migrations, portable placeholders, transactions, batches', async () => {
    await contract(await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' }));
  });
  it('PostgreSQL: migrations, portable placeholders, transactions, batches', async () => {
    if (!(await postgresAvailable('PostgreSQL store tests'))) return;
    await contract(await freshPostgres());
  });
});
