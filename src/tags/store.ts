import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Tag storage: one row per (resource ARN, tag key), on the platform database (SQLite or PostgreSQL, portable
 * `$n` SQL). The contract suite (test/compat/tags-contract.test.ts) runs against both engines.
 *
 * Contracts: keys are case-sensitive and unique per resource; `put` upserts (a key already present takes the
 * new value) and commits nothing when the resource would end up with more than `max` tags; rows come back in
 * ascending key order after the keyset cursor `after`.
 */

/** A tag as AWS writes it (reference §3.8: PascalCase members). `Value` absent when none was given. */
export interface Tag {
  readonly Key: string;
  readonly Value?: string;
}

export interface TagStore {
  /** Upsert `tags` on `arn`; false (and nothing written) when the resource would hold more than `max`. */
  put(arn: string, tags: readonly Tag[], max: number): Promise<boolean>;
  /** Remove the given keys (absent keys are ignored). */
  remove(arn: string, keys: readonly string[]): Promise<void>;
  /** Remove every tag of a resource. */
  removeAll(arn: string): Promise<void>;
  /** Tags of `arn` in ascending key order, after `after`, at most `limit`. */
  list(arn: string, page: { after?: string; limit: number }): Promise<Tag[]>;
}

/** `TEXT COLLATE "C"` on PostgreSQL so keys sort bytewise on both engines (keyset pagination). */
const DDL = (text: string) =>
  `CREATE TABLE resource_tags (resource_arn ${text} NOT NULL, tag_key ${text} NOT NULL, tag_value ${text},
  PRIMARY KEY (resource_arn, tag_key));`;

export const TAG_MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'resource tags', sqlite: DDL('TEXT'), postgres: DDL('TEXT COLLATE "C"') },
];

/**
 * Open the tag store (runs its migrations).
 * @example const store = await openTagStore(db); await store.put(arn, [{ Key: 'env', Value: 'prod' }], 50);
 */
export async function openTagStore(db: Database): Promise<TagStore> {
  await migrate(db, 'tags', TAG_MIGRATIONS);
  return {
    put(arn, tags, max) {
      return db
        .transaction(async (tx) => {
          // Concurrent writers on PostgreSQL would each count before the other's insert: one at a time per ARN.
          if (db.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [arn]);
          for (const t of tags)
            await tx.run(
              'INSERT INTO resource_tags (resource_arn, tag_key, tag_value) VALUES ($1, $2, $3) ' +
                'ON CONFLICT (resource_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value',
              [arn, t.Key, t.Value ?? null],
            );
          const rows = await tx.query<{ n: unknown }>(
            'SELECT count(*) AS n FROM resource_tags WHERE resource_arn = $1',
            [arn],
          );
          if (Number(rows[0]?.n ?? 0) <= max) return true;
          throw new OverLimit();
        })
        .catch((err: unknown) => {
          if (err instanceof OverLimit) return false;
          throw err;
        });
    },
    async remove(arn, keys) {
      for (const key of keys)
        await db.run('DELETE FROM resource_tags WHERE resource_arn = $1 AND tag_key = $2', [arn, key]);
    },
    async removeAll(arn) {
      await db.run('DELETE FROM resource_tags WHERE resource_arn = $1', [arn]);
    },
    async list(arn, page) {
      const rows = await db.query<{ tag_key: string; tag_value: string | null }>(
        `SELECT tag_key, tag_value FROM resource_tags WHERE resource_arn = $1 AND tag_key > $2 ORDER BY tag_key LIMIT ${Math.max(1, Math.trunc(page.limit))}`,
        [arn, page.after ?? ''],
      );
      return rows.map((r) =>
        r.tag_value === null ? { Key: r.tag_key } : { Key: r.tag_key, Value: r.tag_value },
      );
    },
  };
}

/** Rolls the put transaction back (the count went over the limit). */
class OverLimit extends Error {}
