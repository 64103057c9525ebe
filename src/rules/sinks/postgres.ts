import pg from 'pg';
import { ActionError, type ActionRequest } from '../actions.js';
import type { ActionConfig } from '../types.js';

/** INSERTs into a configured table; one small pool per connection string. */
export class PostgresSink {
  private readonly pools = new Map<string, pg.Pool>();

  /** `defaultUrl`: rules.postgresUrl, for postgres actions without `connectionString`. */
  constructor(private readonly defaultUrl: string | null) {}

  async insert(config: ActionConfig, r: Extract<ActionRequest, { kind: 'postgres' }>): Promise<void> {
    const c = config.postgres!;
    const url = c.connectionString ?? this.defaultUrl;
    if (!url)
      throw new ActionError(
        'no PostgreSQL URL configured (rules.postgresUrl or postgres.connectionString)',
        false,
      );
    const table = c.table
      .split('.')
      .map((p) => `"${p}"`)
      .join('.');
    const cols = c.columns.map((col) => `"${col.name}"`).join(', ');
    const params = c.columns.map((_, i) => `$${i + 1}`).join(', ');
    try {
      await this.pool(url).query(`INSERT INTO ${table} (${cols}) VALUES (${params})`, r.values);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // SQL errors in classes 22 (data), 23 (constraint) and 42 (syntax/undefined table) will not heal alone.
      const permanent = /^(22|23|42)/.test(code);
      throw new ActionError(`INSERT INTO ${c.table} failed: ${(err as Error).message}`, !permanent);
    }
  }

  private pool(url: string): pg.Pool {
    let p = this.pools.get(url);
    if (!p) {
      p = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 3000 });
      p.on('error', () => undefined); // idle client errors: the next query reconnects
      this.pools.set(url, p);
    }
    return p;
  }

  close(): Promise<unknown>[] {
    const tasks = [...this.pools.values()].map((p) => p.end().catch(() => undefined));
    this.pools.clear();
    return tasks;
  }
}
