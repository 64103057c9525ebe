import type { Database } from '../store/index.js';

/** SQL helpers shared by the registry's store parts (`*-store.ts`). Internal to the context. */

/** A keyset page: rows after `after` (ascending), at most `limit`. */
export interface Page {
  readonly after?: string | undefined;
  readonly limit: number;
}

/** Case-sensitive prefix test, portable (SQLite's LIKE ignores ASCII case). */
export const startsWith = (expr: string, param: string) =>
  `substr(${expr}, 1, length(CAST(${param} AS TEXT))) = ${param}`;

/** `INSERT ... ON CONFLICT DO NOTHING`: true when the row was new. */
export async function insertOrIgnore(db: Database, sql: string, params: unknown[]): Promise<boolean> {
  return (await db.run(`${sql} ON CONFLICT DO NOTHING`, params)) > 0;
}
