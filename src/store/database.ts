import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';

export type Row = Record<string, unknown>;

/** One write statement of a `batch`, with `$1..$n` placeholders. */
export interface Statement {
  readonly sql: string;
  readonly params?: readonly unknown[];
}

interface Common {
  /** Run a statement with `$1..$n` placeholders and return its rows. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Run a statement; returns the number of rows changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Run `fn` in one transaction; `tx` must be used for every statement inside it. */
  transaction<T>(fn: (tx: Pick<Common, 'query' | 'run'>) => Promise<T>): Promise<T>;
  /**
   * Run write statements known up front in one transaction, in order; returns each one's change count.
   * With `guard`, the first statement is a precondition (a conditional UPDATE, an INSERT ... ON CONFLICT DO
   * NOTHING): when it changes no row the rest are skipped (counted 0). A failing statement rolls back all.
   *
   * On SQLite the batch runs without yielding once no transaction is open on the shared handle, so nothing
   * interleaves with it and no other caller's rollback can take it along. Not to be awaited inside a
   * `transaction` callback (it waits for that transaction to end); use `tx` there.
   * @example const [updated] = await db.batch([{ sql: 'UPDATE t SET v = $1 WHERE k = $2 AND v = $3', params }, ...], { guard: true });
   */
  batch(statements: readonly Statement[], options?: { guard?: boolean }): Promise<number[]>;
  close(): Promise<void>;
}

export interface SqliteDatabase extends Common {
  readonly kind: 'sqlite';
  /** The synchronous handle, for prepared statements on hot paths. Owned by this Database. */
  readonly raw: BetterSqlite3.Database;
}

export interface PostgresDatabase extends Common {
  readonly kind: 'postgres';
  readonly raw: pg.Pool;
}

export type Database = SqliteDatabase | PostgresDatabase;

/**
 * `$n` placeholders -> `?` plus the parameter order, so one SQL text serves both engines
 * (better-sqlite3 binds positional `?` only). `$n` inside string literals is not supported.
 */
function toSqlite(sql: string): { sql: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { sql: text, order };
}

/** SQLite has no booleans and no Date binding; convert the values portable code passes. */
function sqliteParams(params: readonly unknown[], order: readonly number[]): unknown[] {
  return order
    .map((i) => params[i])
    .map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p instanceof Date ? p.getTime() : p));
}

/** A batch's change counts; with `guard`, the statements after a first that changed nothing are skipped. */
function runBatch(
  statements: readonly Statement[],
  guard: boolean,
  run: (st: Statement) => number,
): number[] {
  const counts: number[] = [];
  for (const st of statements) counts.push(guard && counts[0] === 0 ? 0 : run(st));
  return counts;
}

/**
 * Open the platform database: PostgreSQL when `databaseUrl` is set, else `<dataDir>/thingstead.db`.
 * @example const db = await openDatabase({ dataDir: './data', databaseUrl: null });
 */
export async function openDatabase(options: {
  dataDir: string;
  databaseUrl: string | null;
  /** SQLite file name inside dataDir; ':memory:' for throwaway tests. */
  file?: string;
}): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl);
  const file = options.file ?? 'thingstead.db';
  if (file !== ':memory:') mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const raw = new BetterSqlite3(file === ':memory:' ? file : join(options.dataDir, file));
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('busy_timeout = 5000');
  raw.pragma('foreign_keys = ON');
  const cache = new Map<string, { stmt: BetterSqlite3.Statement; order: number[] }>();
  const prepare = (sql: string) => {
    let entry = cache.get(sql);
    if (!entry) {
      const converted = toSqlite(sql);
      entry = { stmt: raw.prepare(converted.sql), order: converted.order };
      if (cache.size > 500) cache.clear();
      cache.set(sql, entry);
    }
    return entry;
  };
  const ops = {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      const { stmt, order } = prepare(sql);
      const args = sqliteParams(params, order);
      if (stmt.reader) return stmt.all(...args) as T[];
      stmt.run(...args);
      return [];
    },
    async run(sql: string, params: readonly unknown[] = []): Promise<number> {
      const { stmt, order } = prepare(sql);
      return stmt.run(...sqliteParams(params, order)).changes;
    },
  };
  // SQLite transactions are serialized through a promise chain so that async callbacks never interleave,
  // and statements issued outside a transaction while one is open wait for it to finish, so they can never
  // be swept into (or rolled back with) another caller's transaction.
  let chain: Promise<unknown> = Promise.resolve();
  let open = 0;
  return {
    kind: 'sqlite',
    raw,
    query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return open > 0 ? chain.then(() => ops.query<T>(sql, params)) : ops.query<T>(sql, params);
    },
    run(sql: string, params?: readonly unknown[]): Promise<number> {
      return open > 0 ? chain.then(() => ops.run(sql, params)) : ops.run(sql, params);
    },
    async batch(statements: readonly Statement[], options: { guard?: boolean } = {}): Promise<number[]> {
      // Wait out every open transaction (ours are async; a raw BEGIN elsewhere would be too), then run in
      // one synchronous better-sqlite3 transaction.
      while (open > 0 || raw.inTransaction)
        await (open > 0 ? chain : new Promise((resolve) => setImmediate(resolve)));
      return raw.transaction(() =>
        runBatch(statements, options.guard ?? false, (st) => {
          const { stmt, order } = prepare(st.sql);
          return stmt.run(...sqliteParams(st.params ?? [], order)).changes;
        }),
      )();
    },
    transaction<T>(fn: (tx: typeof ops) => Promise<T>): Promise<T> {
      open++;
      const next = chain.then(async () => {
        raw.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(ops);
          raw.exec('COMMIT');
          return result;
        } catch (err) {
          raw.exec('ROLLBACK');
          throw err;
        } finally {
          open--;
        }
      });
      chain = next.catch(() => undefined);
      return next;
    },
    async close() {
      await chain;
      raw.close();
    },
  };
}

async function openPostgres(url: string): Promise<PostgresDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // Fail at start with a clear message rather than on the first request.
  const probe = await pool.connect();
  probe.release();
  const ops = (client: pg.Pool | pg.PoolClient) => ({
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      return (await client.query(sql, params as unknown[])).rows as T[];
    },
    async run(sql: string, params: readonly unknown[] = []): Promise<number> {
      return (await client.query(sql, params as unknown[])).rowCount ?? 0;
    },
  });
  async function transaction<T>(fn: (tx: ReturnType<typeof ops>) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(ops(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  return {
    kind: 'postgres',
    raw: pool,
    ...ops(pool),
    transaction,
    batch(statements: readonly Statement[], options: { guard?: boolean } = {}): Promise<number[]> {
      return transaction(async (tx) => {
        const counts: number[] = [];
        for (const st of statements)
          counts.push(options.guard && counts[0] === 0 ? 0 : await tx.run(st.sql, st.params));
        return counts;
      });
    },
    async close() {
      await pool.end();
    },
  };
}
