/**
 * The storage foundation every context's store is built on: one database handle, embedded SQLite
 * (better-sqlite3, WAL) by default or PostgreSQL when `databaseUrl` is set, and versioned migrations
 * per context run at start.
 *
 * Contexts define their own store interface (`registry/store.ts`, `mqtt/store.ts`, ...) with a SQLite and
 * a PostgreSQL implementation, and one contract suite run against both. Portable SQL uses `$1, $2`
 * placeholders on both engines through `Database.query/run`; hot paths may use `raw` prepared statements.
 */
export {
  openDatabase,
  type Database,
  type SqliteDatabase,
  type PostgresDatabase,
  type Statement,
} from './database.js';
export { migrate, type Migration } from './migrate.js';
