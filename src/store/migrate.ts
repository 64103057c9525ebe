import type { Database } from './database.js';

/** One schema step of one context. Versions are integers, applied in order, each exactly once. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  /** SQL for SQLite (may hold several statements). */
  readonly sqlite: string;
  /** SQL for PostgreSQL (may hold several statements). */
  readonly postgres: string;
}

/**
 * Apply a context's pending migrations in one transaction each, recording them in `schema_migrations`.
 * Safe to call at every start; concurrent starters on PostgreSQL serialize on an advisory lock.
 */
export async function migrate(
  db: Database,
  context: string,
  migrations: readonly Migration[],
): Promise<void> {
  const create =
    'CREATE TABLE IF NOT EXISTS schema_migrations (context TEXT NOT NULL, version INTEGER NOT NULL, ' +
    'description TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (context, version))';
  if (db.kind === 'sqlite') {
    db.raw.exec(create);
    const applied = new Set(
      (
        db.raw.prepare('SELECT version FROM schema_migrations WHERE context = ?').all(context) as {
          version: number;
        }[]
      ).map((r) => r.version),
    );
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      db.raw.transaction(() => {
        db.raw.exec(m.sqlite);
        db.raw
          .prepare(
            'INSERT INTO schema_migrations (context, version, description, applied_at) VALUES (?, ?, ?, ?)',
          )
          .run(context, m.version, m.description, Date.now());
      })();
    }
    return;
  }
  const client = await db.raw.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', ['thingstead-migrate']);
    await client.query(create);
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM schema_migrations WHERE context = $1',
      [context],
    );
    const applied = new Set(rows.map((r) => Number(r.version)));
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.postgres);
        await client.query(
          'INSERT INTO schema_migrations (context, version, description, applied_at) VALUES ($1, $2, $3, $4)',
          [context, m.version, m.description, Date.now()],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
  } finally {
    await client
      .query('SELECT pg_advisory_unlock(hashtext($1))', ['thingstead-migrate'])
      .catch(() => undefined);
    client.release();
  }
}
