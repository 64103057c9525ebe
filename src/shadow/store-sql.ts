/**
 * The shadow store (store.ts) on SQLite and PostgreSQL: one table, `shadows`, keyed by (thing, shadow name).
 *
 * Hot path (`get`, `put`): one statement each, no transaction wrapper (a single statement is atomic on both
 * engines). SQLite runs them as synchronous prepared statements on `db.raw` (no await between reading the
 * arguments and the write, so nothing interleaves); PostgreSQL runs them as named prepared statements on the
 * pool, so many puts are in flight at once and the row lock plus the `version = expected` re-check under
 * READ COMMITTED lets exactly one of two concurrent writers win. The rest (listing, scans, purges) goes
 * through the portable `Database.query/run`.
 *
 * Name order is bytewise UTF-8, i.e. code point order, on both engines (`COLLATE "C"` on PostgreSQL, SQLite's
 * BINARY); it differs from JavaScript's UTF-16 `<` only for characters above U+FFFF. Keyset paging
 * (`listNames` after, `scan` after) follows it.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { migrate, type Database, type Migration, type PostgresDatabase } from '../store/index.js';
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
 * Synchronous prepared statements. Another context's async transaction may be open on the shared handle
 * (between its statements); a statement run now would join it (and its rollback), so while one is open the
 * call goes through `Database.query/run`, which wait for it to end.
 */
function sqliteHotPath(raw: BetterSqlite3.Database, db: Database): HotPath {
  const get = raw.prepare<[string, string], ShadowRow>(positional(SQL.get));
  const insert = raw.prepare(positional(SQL.insert));
  const update = raw.prepare(positional(SQL.update));
  return {
    async get(thingName, shadowName) {
      const row = raw.inTransaction
        ? (await db.query<ShadowRow>(SQL.get, [thingName, shadowName]))[0]
        : get.get(thingName, shadowName);
      return row ? shadowOf(row) : null;
    },
    async put(row, expected) {
      if (raw.inTransaction)
        return (
          (expected === null
            ? await db.run(SQL.insert, insertValues(row))
            : await db.run(SQL.update, updateValues(row, expected))) > 0
        );
      const changed =
        expected === null ? insert.run(...insertValues(row)) : update.run(...updateValues(row, expected));
      return changed.changes > 0;
    },
  };
}

/** Named statements: parsed and planned once per pooled connection. */
function postgresHotPath(db: PostgresDatabase): HotPath {
  const pool = db.raw;
  return {
    async get(thingName, shadowName) {
      const { rows } = await pool.query<ShadowRow>({
        name: 'shadow_get',
        text: SQL.get,
        values: [thingName, shadowName],
      });
      return rows[0] ? shadowOf(rows[0]) : null;
    },
    async put(row, expected) {
      const { rowCount } = await pool.query(
        expected === null
          ? { name: 'shadow_insert', text: SQL.insert, values: insertValues(row) }
          : { name: 'shadow_update', text: SQL.update, values: updateValues(row, expected) },
      );
      return (rowCount ?? 0) > 0;
    },
  };
}
