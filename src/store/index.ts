/**
 * The storage foundation every context's store is built on: one database handle, embedded SQLite
 * (better-sqlite3, WAL) by default or PostgreSQL when `databaseUrl` is set, and versioned migrations
 * per context run at start.
 *
 * Contexts define their own store interface (`registry/store.ts`, `mqtt/store.ts`, ...) with a SQLite and
 * a PostgreSQL implementation, and one contract suite run against both. Portable SQL uses `$1, $2`
 * placeholders on both engines through `Database.query/run`; writes of several statements go through
 * `transaction` or, when the statements are known up front, `batch` (optionally guarded by its first
 * statement), never a context's own BEGIN/COMMIT; hot paths may use `raw` prepared statements.
 * Imports: no other context (a leaf).
 */
export {
  openDatabase,
  type Database,
  type SqliteDatabase,
  type PostgresDatabase,
  type Statement,
} from './database.js';
export { migrate, type Migration } from './migrate.js';
