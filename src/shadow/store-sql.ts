/**
 * The shadow store (store.ts) on SQLite and PostgreSQL: one table, `shadows`, keyed by (thing, shadow name).
 *
 * Hot path (`get`, `put`): each put is one conditional statement (UPDATE ... WHERE version = expected, or
 * INSERT ... ON CONFLICT DO NOTHING), so its outcome never depends on what was read before it. SQLite runs
 * them as synchronous prepared statements on `db.raw`; PostgreSQL as named prepared statements on the pool,
 * where the row lock plus the re-check of `version = expected` under READ COMMITTED lets exactly one of two
 * concurrent writers win. Under load both engines coalesce puts (SQLite: one transaction per event-loop
 * turn; PostgreSQL: one statement per free connection) and PostgreSQL coalesces gets; a lone call runs at
 * once. A put resolves after its commit. The rest (listing, scans, purges) goes through the portable
 * `Database.query/run`.
 *
 * Name order is bytewise UTF-8, i.e. code point order, on both engines (`COLLATE "C"` on PostgreSQL, SQLite's
 * BINARY); it differs from JavaScript's UTF-16 `<` only for characters above U+FFFF. Keyset paging
 * (`listNames` after, `scan` after) follows it.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import {
  migrate,
  type Database,
  type Migration,
  type PostgresDatabase,
  type Statement,
} from '../store/index.js';
import type { ShadowStore, StoredShadow } from './store.js';

const DDL = (bigint: string, text: string) => `
CREATE TABLE shadows (thing_name ${text} NOT NULL, shadow_name ${text} NOT NULL, version ${bigint} NOT NULL,
  document TEXT, updated_at ${bigint} NOT NULL, deleted_at ${bigint},
  PRIMARY KEY (thing_name, shadow_name));
CREATE INDEX shadows_tombstones ON shadows (deleted_at) WHERE deleted_at IS NOT NULL;`;

const SHADOW_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'shadows: one row per thing and shadow name, tombstones keep the version',
    sqlite: DDL('INTEGER', 'TEXT'),
    // fillfactor leaves room on each page so an update rewrites the row in place (HOT, no index write).
    postgres: DDL('BIGINT', 'TEXT COLLATE "C"') + '\nALTER TABLE shadows SET (fillfactor = 80);',
  },
];

interface ShadowRow {
  thing_name: string;
  shadow_name: string;
  version: number | string;
  document: string | null;
  updated_at: number | string;
  deleted_at: number | string | null;
}

const COLUMNS = 'thing_name, shadow_name, version, document, updated_at, deleted_at';

const SQL = {
  get: `SELECT ${COLUMNS} FROM shadows WHERE thing_name = $1 AND shadow_name = $2`,
  insert:
    `INSERT INTO shadows (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ` +
    'ON CONFLICT (thing_name, shadow_name) DO NOTHING',
  update:
    'UPDATE shadows SET version = $1, document = $2, updated_at = $3, deleted_at = $4 ' +
    'WHERE thing_name = $5 AND shadow_name = $6 AND version = $7',
  namesFirst:
    'SELECT shadow_name FROM shadows WHERE thing_name = $1 AND deleted_at IS NULL ORDER BY shadow_name LIMIT $2',
  namesAfter:
    'SELECT shadow_name FROM shadows WHERE thing_name = $1 AND deleted_at IS NULL AND shadow_name > $2 ' +
    'ORDER BY shadow_name LIMIT $3',
  scanFirst: `SELECT ${COLUMNS} FROM shadows WHERE deleted_at IS NULL ORDER BY thing_name, shadow_name LIMIT $1`,
  scanAfter:
    `SELECT ${COLUMNS} FROM shadows WHERE deleted_at IS NULL AND (thing_name, shadow_name) > ($1, $2) ` +
    'ORDER BY thing_name, shadow_name LIMIT $3',
  deleteThing: 'DELETE FROM shadows WHERE thing_name = $1',
  purge: 'DELETE FROM shadows WHERE deleted_at IS NOT NULL AND deleted_at < $1',
} as const;

const shadowOf = (r: ShadowRow): StoredShadow => ({
  thingName: r.thing_name,
  shadowName: r.shadow_name,
  version: Number(r.version),
  document: r.document,
  updatedAt: Number(r.updated_at),
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
});

/** Parameters of `SQL.insert`. */
const insertValues = (row: StoredShadow) => [
  row.thingName,
  row.shadowName,
  row.version,
  row.document,
  row.updatedAt,
  row.deletedAt,
];

/** Parameters of `SQL.update`. */
const updateValues = (row: StoredShadow, expected: number) => [
  row.version,
  row.document,
  row.updatedAt,
  row.deletedAt,
  row.thingName,
  row.shadowName,
  expected,
];

/** `$n` -> `?` for better-sqlite3: the hot-path statements use each parameter once, in `$1..$n` order. */
const positional = (sql: string) => sql.replace(/\$\d+/g, '?');

/**
 * Open the shadow store on the platform database, creating its table on first use.
 * @example const store = await createShadowStore(db); await store.put(row, null);
 */
export async function createShadowStore(db: Database): Promise<ShadowStore> {
  await migrate(db, 'shadow', SHADOW_MIGRATIONS);
  const hot = db.kind === 'sqlite' ? sqliteHotPath(db.raw, db) : postgresHotPath(db);
  return {
    ...hot,
    async listNames(thingName, { after, limit }) {
      if (limit <= 0) return [];
      // No `after`: from the start, the classic shadow ('') first; `after: ''` starts after it.
      const rows =
        after === undefined
          ? await db.query<{ shadow_name: string }>(SQL.namesFirst, [thingName, limit])
          : await db.query<{ shadow_name: string }>(SQL.namesAfter, [thingName, after, limit]);
      return rows.map((r) => r.shadow_name);
    },
    async scan({ after, limit }) {
      if (limit <= 0) return [];
      const rows = after
        ? await db.query<ShadowRow>(SQL.scanAfter, [after.thingName, after.shadowName, limit])
        : await db.query<ShadowRow>(SQL.scanFirst, [limit]);
      return rows.map(shadowOf);
    },
    deleteThing: (thingName) => db.run(SQL.deleteThing, [thingName]),
    purgeTombstones: (before) => db.run(SQL.purge, [before]),
  };
}

type HotPath = Pick<ShadowStore, 'get' | 'put'>;

/**
 * SQLite: synchronous prepared statements. The first put of an event-loop turn runs at once, in its own
 * implicit transaction; puts made later in the same turn queue and run together at the end of the turn
 * (setImmediate) in one transaction, one WAL commit for all (group commit; measured in
 * bench/shadow-store.ts). Each is still its own conditional statement, decided as it would be alone, and
 * resolves after the commit. A transaction that fails is rolled back whole and its puts rerun one by one.
 *
 * Another context's async transaction may be open on the shared handle (between its statements); a
 * statement run now would join it (and its rollback), so while one is open reads go through
 * `Database.query` and writes through `Database.batch`, which wait for it to end.
 */
function sqliteHotPath(raw: BetterSqlite3.Database, db: Database): HotPath {
  const get = raw.prepare<[string, string], ShadowRow>(positional(SQL.get));
  const insert = raw.prepare(positional(SQL.insert));
  const update = raw.prepare(positional(SQL.update));
  const write = (c: Pick<PutCall, 'row' | 'expected'>) =>
    (c.expected === null
      ? insert.run(...insertValues(c.row))
      : update.run(...updateValues(c.row, c.expected))
    ).changes > 0;
  const writeAll = raw.transaction((calls: readonly PutCall[]) => calls.map(write));
  const statement = (c: PutCall): Statement =>
    c.expected === null
      ? { sql: SQL.insert, params: insertValues(c.row) }
      : { sql: SQL.update, params: updateValues(c.row, c.expected) };

  let queue: PutCall[] = [];
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const calls = queue;
    queue = [];
    if (calls.length === 0) return;
    try {
      const written = raw.inTransaction
        ? (await db.batch(calls.map(statement))).map((n) => n > 0)
        : writeAll(calls);
      calls.forEach((c, i) => c.settle(written[i]!));
    } catch {
      for (const c of calls) {
        try {
          const st = statement(c);
          c.settle(raw.inTransaction ? (await db.run(st.sql, st.params)) > 0 : write(c));
        } catch (err) {
          c.settle(asError(err));
        }
      }
    }
  };
  const schedule = () => {
    scheduled = true;
    setImmediate(() => void flush());
  };

  return {
    async get(thingName, shadowName) {
      const row = raw.inTransaction
        ? (await db.query<ShadowRow>(SQL.get, [thingName, shadowName]))[0]
        : get.get(thingName, shadowName);
      return row ? shadowOf(row) : null;
    },
    async put(row, expected) {
      if (!scheduled && !raw.inTransaction) {
        schedule();
        return write({ row, expected });
      }
      if (!scheduled) schedule();
      return new Promise((resolve, reject) =>
        queue.push({ row, expected, key: '', settle: settler(resolve, reject) }),
      );
    },
  };
}

/**
 * PostgreSQL: while fewer than `slots` statements of a kind are in flight, a call runs as its own named
 * statement (parsed and planned once per pooled connection), so a lone update pays no batching delay. Calls
 * that arrive while every slot is busy queue up, and each freed slot takes up to `PG_MAX_BATCH` of them as
 * one statement over `unnest`ed arrays: under load one round trip and one commit carry many updates
 * (measured in bench/shadow-store.ts). A batch never holds two puts for the same shadow, nor a shadow that
 * a batch in flight is writing, so each put is decided exactly as it would be alone: the conditional
 * UPDATE (or INSERT ... ON CONFLICT DO NOTHING) of its row, under the row lock. A batch the server rejects
 * (a deadlock with another node's batch, one bad value) is rolled back whole and its puts rerun one by one.
 */
function postgresHotPath(db: PostgresDatabase): HotPath {
  const pool = db.raw;
  const single = {
    async get(thingName: string, shadowName: string) {
      const { rows } = await pool.query<ShadowRow>({
        name: 'shadow_get',
        text: SQL.get,
        values: [thingName, shadowName],
      });
      return rows[0] ? shadowOf(rows[0]) : null;
    },
    async put(row: StoredShadow, expected: number | null) {
      const { rowCount } = await pool.query(
        expected === null
          ? { name: 'shadow_insert', text: SQL.insert, values: insertValues(row) }
          : { name: 'shadow_update', text: SQL.update, values: updateValues(row, expected) },
      );
      return (rowCount ?? 0) > 0;
    },
  };

  const gets = coalescer<GetCall>(
    PG_GET_SLOTS,
    () => true,
    async (batch) => {
      if (batch.length === 1) {
        const [c] = batch as [GetCall];
        return c.settle(await single.get(c.thingName, c.shadowName));
      }
      const { rows } = await pool.query<ShadowRow>({
        name: 'shadow_get_batch',
        text: PG_BATCH.get,
        values: [batch.map((c) => c.thingName), batch.map((c) => c.shadowName)],
      });
      const found = new Map(rows.map((r) => [keyOf(r.thing_name, r.shadow_name), shadowOf(r)]));
      for (const c of batch) c.settle(found.get(keyOf(c.thingName, c.shadowName)) ?? null);
    },
  );

  // Keys written by batches in flight, and the batch being built: never two writes of one row at once.
  const busy = new Set<string>();
  const puts = coalescer<PutCall>(
    PG_PUT_SLOTS,
    (c) => !busy.has(c.key) && (busy.add(c.key), true),
    async (batch) => {
      try {
        if (batch.length === 1) {
          const [c] = batch as [PutCall];
          return c.settle(await single.put(c.row, c.expected));
        }
        let written: Set<string>;
        try {
          written = await putBatch(pool, batch);
        } catch (err) {
          if (!isStatementError(err)) throw err;
          for (const c of batch) c.settle(await single.put(c.row, c.expected).catch(asError));
          return;
        }
        for (const c of batch) c.settle(written.has(c.key));
      } finally {
        for (const c of batch) busy.delete(c.key);
      }
    },
  );

  return {
    get: (thingName, shadowName) =>
      new Promise((resolve, reject) =>
        gets.push({ thingName, shadowName, settle: settler(resolve, reject) }),
      ),
    put: (row, expected) =>
      new Promise((resolve, reject) =>
        puts.push({
          row,
          expected,
          key: keyOf(row.thingName, row.shadowName),
          settle: settler(resolve, reject),
        }),
      ),
  };
}

/** Store statements in flight at once on the platform pool (10 connections), by kind. */
const PG_GET_SLOTS = 3;
const PG_PUT_SLOTS = 3;
const PG_MAX_BATCH = 256;

const PG_BATCH = {
  get:
    `SELECT s.thing_name, s.shadow_name, s.version, s.document, s.updated_at, s.deleted_at ` +
    'FROM unnest($1::text[], $2::text[]) AS k (thing_name, shadow_name) ' +
    'JOIN shadows s ON s.thing_name = k.thing_name AND s.shadow_name = k.shadow_name',
  // Updates and inserts of one batch in one statement (their keys are distinct); returns the keys written.
  put:
    'WITH u AS (UPDATE shadows s SET version = v.version, document = v.document, updated_at = v.updated_at, ' +
    'deleted_at = v.deleted_at ' +
    'FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) ' +
    'AS v (thing_name, shadow_name, version, document, updated_at, deleted_at, expected) ' +
    'WHERE s.thing_name = v.thing_name AND s.shadow_name = v.shadow_name AND s.version = v.expected ' +
    'RETURNING s.thing_name, s.shadow_name), ' +
    `i AS (INSERT INTO shadows (${COLUMNS}) ` +
    'SELECT * FROM unnest($8::text[], $9::text[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[]) ' +
    'ON CONFLICT (thing_name, shadow_name) DO NOTHING RETURNING thing_name, shadow_name) ' +
    'SELECT thing_name, shadow_name FROM u UNION ALL SELECT thing_name, shadow_name FROM i',
} as const;

const keyOf = (thingName: string, shadowName: string) => `${thingName}\u0000${shadowName}`;

interface Settles<T> {
  /** Resolve with a value, or reject with an Error. */
  settle(result: T | Error): void;
}
interface GetCall extends Settles<StoredShadow | null> {
  thingName: string;
  shadowName: string;
}
interface PutCall extends Settles<boolean> {
  row: StoredShadow;
  expected: number | null;
  key: string;
}

const settler =
  <T>(resolve: (v: T) => void, reject: (e: Error) => void) =>
  (result: T | Error) =>
    result instanceof Error ? reject(result) : resolve(result);

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));

/** The server refused the statement (it carries a SQLSTATE): it was rolled back, nothing of it committed. */
const isStatementError = (err: unknown) =>
  typeof (err as { code?: unknown }).code === 'string' &&
  /^[0-9A-Z]{5}$/.test((err as { code: string }).code);

async function putBatch(pool: pg.Pool, batch: readonly PutCall[]): Promise<Set<string>> {
  const updates = batch.filter((c) => c.expected !== null);
  const inserts = batch.filter((c) => c.expected === null);
  const column = <T>(calls: readonly PutCall[], f: (c: PutCall) => T) => calls.map(f);
  const { rows } = await pool.query<{ thing_name: string; shadow_name: string }>({
    name: 'shadow_put_batch',
    text: PG_BATCH.put,
    values: [
      column(updates, (c) => c.row.thingName),
      column(updates, (c) => c.row.shadowName),
      column(updates, (c) => c.row.version),
      column(updates, (c) => c.row.document),
      column(updates, (c) => c.row.updatedAt),
      column(updates, (c) => c.row.deletedAt),
      column(updates, (c) => c.expected),
      column(inserts, (c) => c.row.thingName),
      column(inserts, (c) => c.row.shadowName),
      column(inserts, (c) => c.row.version),
      column(inserts, (c) => c.row.document),
      column(inserts, (c) => c.row.updatedAt),
      column(inserts, (c) => c.row.deletedAt),
    ],
  });
  return new Set(rows.map((r) => keyOf(r.thing_name, r.shadow_name)));
}

/**
 * A FIFO of calls served by at most `slots` concurrent runs of `run`, each taking the queued calls that
 * `take` accepts (up to PG_MAX_BATCH, in arrival order; the rest keep their place). `run` settles every
 * call it is given; if it throws, the calls it has not settled are rejected with the error.
 */
function coalescer<C extends Settles<never>>(
  slots: number,
  take: (call: C) => boolean,
  run: (batch: C[]) => Promise<void>,
): { push(call: C): void } {
  let queue: C[] = [];
  let running = 0;
  const pump = () => {
    while (running < slots && queue.length > 0) {
      const batch: C[] = [];
      const rest: C[] = [];
      for (const c of queue) (batch.length < PG_MAX_BATCH && take(c) ? batch : rest).push(c);
      queue = rest;
      if (batch.length === 0) return;
      running++;
      run(batch)
        .catch((err: unknown) => {
          for (const c of batch) c.settle(asError(err));
        })
        .finally(() => {
          running--;
          pump();
        });
    }
  };
  return {
    push(call) {
      queue.push(call);
      pump();
    },
  };
}
