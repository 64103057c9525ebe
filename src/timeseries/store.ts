import { migrate, type Database, type PostgresDatabase } from '../store/index.js';
import { MIGRATIONS } from './migrations.js';
import type { BucketStats, Point, RangeQuery, RetentionPolicy, SeriesInfo } from './types.js';

const DAY_MS = 86_400_000;

/** A bucket's raw row as read for `last` and percentiles. */
export interface RawRow {
  readonly key: string;
  readonly bucket: number;
  readonly ts: number;
  readonly value: number | string;
}

/**
 * Storage of time-series points: SQLite (embedded) or PostgreSQL (partitioned by day). One contract suite
 * (store.test.ts) runs against both.
 */
export interface TimeseriesStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Write a batch in one transaction; a point with an existing (thing, metric, ts) replaces it. */
  writePoints(points: readonly Point[]): Promise<void>;
  queryRange(q: RangeQuery): Promise<Point[]>;
  /** Per (key, bucket) count/sum/min/max over raw points, key = thing or '' when grouped. */
  bucketStats(q: BucketQuery): Promise<Map<string, Map<number, BucketStats>>>;
  /** Raw rows ordered by time (for last and percentiles). */
  bucketRows(q: BucketQuery): Promise<RawRow[]>;
  /** Rollup stats for buckets older than the retention watermark, re-bucketed to `stepMs`. */
  rollupStats(q: BucketQuery): Promise<Map<string, Map<number, BucketStats>>>;
  listSeries(thing?: string): Promise<SeriesInfo[]>;
  /** Roll raw points older than the policy's age into rollups, delete them, and expire old rollups. */
  applyRetention(
    policy: RetentionPolicy,
    now?: number,
  ): Promise<{ rolledUp: number; deleted: number; watermark: number }>;
  /** Raw points before this instant have been rolled up (0 when never). */
  watermark(): Promise<number>;
}

export interface BucketQuery {
  readonly things: readonly string[];
  readonly metric: string;
  readonly from: number;
  readonly to: number;
  readonly stepMs: number;
  readonly grouped: boolean;
}

/** Open the time-series store on the platform database, running its migrations. */
export async function createTimeseriesStore(db: Database): Promise<TimeseriesStore> {
  await migrate(db, 'timeseries', MIGRATIONS);
  return new SqlTimeseriesStore(db);
}

const emptyStats = (lastTs = -Infinity): BucketStats => ({
  count: 0,
  sum: 0,
  min: Infinity,
  max: -Infinity,
  numCount: 0,
  last: null,
  lastTs,
});

/** Merge `b` into `a` (bucket stats are associative). */
export function mergeStats(a: BucketStats, b: BucketStats): void {
  a.count += b.count;
  a.sum += b.sum;
  a.numCount += b.numCount;
  a.min = Math.min(a.min, b.min);
  a.max = Math.max(a.max, b.max);
  if (b.lastTs >= a.lastTs && b.last !== null) {
    a.last = b.last;
    a.lastTs = b.lastTs;
  }
}

const num = (v: unknown): number => (v === null || v === undefined ? NaN : Number(v));

class SqlTimeseriesStore implements TimeseriesStore {
  readonly kind: 'sqlite' | 'postgres';
  private readonly partitions = new Set<number>();
  constructor(private readonly db: Database) {
    this.kind = db.kind;
  }

  /** `thing IN (...)` for the engine; returns the clause and its params starting at `$start`. */
  private thingsClause(things: readonly string[], start: number): { sql: string; params: unknown[] } {
    if (things.length === 0) return { sql: '1=1', params: [] };
    if (this.db.kind === 'postgres') return { sql: `thing = ANY($${start})`, params: [things] };
    return { sql: `thing IN (${things.map((_, i) => `$${start + i}`).join(', ')})`, params: [...things] };
  }

  async writePoints(points: readonly Point[]): Promise<void> {
    if (points.length === 0) return;
    // Last write wins inside a batch, so one statement never touches a key twice.
    const unique = new Map<string, Point>();
    for (const p of points) unique.set(`${p.thing}\u0000${p.metric}\u0000${p.ts}`, p);
    const rows = [...unique.values()];
    if (this.db.kind === 'sqlite') {
      const raw = this.db.raw;
      // Another context's async transaction may be open on this connection (between its statements);
      // better-sqlite3 would nest ours as a savepoint inside it, so wait for it to finish instead.
      while (raw.inTransaction) await new Promise((r) => setImmediate(r));
      const stmt = raw.prepare(
        'INSERT INTO ts_points (thing, metric, ts, num, str) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (thing, metric, ts) DO UPDATE SET num = excluded.num, str = excluded.str',
      );
      raw.transaction(() => {
        for (const p of rows)
          stmt.run(
            p.thing,
            p.metric,
            Math.trunc(p.ts),
            typeof p.value === 'number' ? p.value : null,
            typeof p.value === 'string' ? p.value : null,
          );
      })();
      return;
    }
    await this.ensurePartitions(this.db, rows);
    await this.db.run(
      'INSERT INTO ts_points (thing, metric, ts, num, str) ' +
        'SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::text[]) ' +
        'ON CONFLICT (thing, metric, ts) DO UPDATE SET num = excluded.num, str = excluded.str',
      [
        rows.map((p) => p.thing),
        rows.map((p) => p.metric),
        rows.map((p) => Math.trunc(p.ts)),
        rows.map((p) => (typeof p.value === 'number' ? p.value : null)),
        rows.map((p) => (typeof p.value === 'string' ? p.value : null)),
      ],
    );
  }

  /** One partition per UTC day, created on first write into it; concurrent creators tolerate each other. */
  private async ensurePartitions(db: PostgresDatabase, rows: readonly Point[]): Promise<void> {
    const days = new Set(rows.map((p) => Math.floor(p.ts / DAY_MS)));
    for (const day of days) {
      if (this.partitions.has(day)) continue;
      const name = partitionName(day);
      try {
        await db.run(
          `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ts_points FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`,
        );
      } catch (err) {
        // 42P07 duplicate_table / 23505 unique_violation on pg_type: another writer created it first.
        const code = (err as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw err;
      }
      this.partitions.add(day);
    }
  }

  async queryRange(q: RangeQuery): Promise<Point[]> {
    const t = this.thingsClause(q.things, 4);
    const limit = Math.min(Math.max(q.limit ?? 10_000, 1), 100_000);
    const rows = await this.db.query<{
      thing: string;
      metric: string;
      ts: unknown;
      num: unknown;
      str: string | null;
    }>(
      `SELECT thing, metric, ts, num, str FROM ts_points WHERE metric = $1 AND ts >= $2 AND ts < $3 AND ${t.sql} ` +
        `ORDER BY ts ${q.order === 'desc' ? 'DESC' : 'ASC'}, thing LIMIT ${limit}`,
      [q.metric, q.from, q.to, ...t.params],
    );
    return rows.map((r) => ({
      thing: r.thing,
      metric: r.metric,
      ts: Number(r.ts),
      value: r.str ?? num(r.num),
    }));
  }

  async bucketStats(q: BucketQuery): Promise<Map<string, Map<number, BucketStats>>> {
    const t = this.thingsClause(q.things, 5);
    const key = q.grouped ? "''" : 'thing';
    const bucket = this.db.kind === 'postgres' ? '(ts - (ts % $4::bigint))' : '(ts - (ts % $4))';
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT ${key} AS key, ${bucket} AS bucket, count(*) AS count, sum(num) AS sum, min(num) AS min, ` +
        `max(num) AS max, count(num) AS numcount, max(ts) AS last_ts FROM ts_points ` +
        `WHERE metric = $1 AND ts >= $2 AND ts < $3 AND ${t.sql} GROUP BY 1, 2`,
      [q.metric, q.from, q.to, q.stepMs, ...t.params],
    );
    const out = new Map<string, Map<number, BucketStats>>();
    for (const r of rows) {
      const numCount = Number(r.numcount);
      const s: BucketStats = {
        count: Number(r.count),
        sum: numCount ? num(r.sum) : 0,
        min: numCount ? num(r.min) : Infinity,
        max: numCount ? num(r.max) : -Infinity,
        numCount,
        last: null,
        lastTs: Number(r.last_ts),
      };
      let m = out.get(String(r.key));
      if (!m) out.set(String(r.key), (m = new Map()));
      m.set(Number(r.bucket), s);
    }
    return out;
  }

  async bucketRows(q: BucketQuery): Promise<RawRow[]> {
    const t = this.thingsClause(q.things, 4);
    const rows = await this.db.query<{ thing: string; ts: unknown; num: unknown; str: string | null }>(
      `SELECT thing, ts, num, str FROM ts_points WHERE metric = $1 AND ts >= $2 AND ts < $3 AND ${t.sql} ORDER BY ts`,
      [q.metric, q.from, q.to, ...t.params],
    );
    return rows.map((r) => {
      const ts = Number(r.ts);
      return {
        key: q.grouped ? '' : r.thing,
        ts,
        bucket: ts - (((ts % q.stepMs) + q.stepMs) % q.stepMs),
        value: r.str ?? num(r.num),
      };
    });
  }

  async rollupStats(q: BucketQuery): Promise<Map<string, Map<number, BucketStats>>> {
    const out = new Map<string, Map<number, BucketStats>>();
    const watermark = await this.watermark();
    if (watermark <= q.from) return out;
    const t = this.thingsClause(q.things, 4);
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT thing, bucket, count, sum, min, max, last_num, last_str, last_ts FROM ts_rollups ` +
        `WHERE metric = $1 AND bucket >= $2 AND bucket < $3 AND ${t.sql}`,
      [q.metric, q.from, Math.min(q.to, watermark), ...t.params],
    );
    for (const r of rows) {
      const key = q.grouped ? '' : String(r.thing);
      const b = Number(r.bucket);
      const bucket = b - (((b % q.stepMs) + q.stepMs) % q.stepMs);
      const hasNum = r.min !== null && r.min !== undefined;
      const s: BucketStats = {
        count: Number(r.count),
        sum: hasNum ? num(r.sum) : 0,
        min: hasNum ? num(r.min) : Infinity,
        max: hasNum ? num(r.max) : -Infinity,
        numCount: hasNum ? Number(r.count) : 0,
        last: (r.last_str as string | null) ?? (r.last_num === null ? null : num(r.last_num)),
        lastTs: Number(r.last_ts),
      };
      let m = out.get(key);
      if (!m) out.set(key, (m = new Map()));
      const prev = m.get(bucket);
      if (prev) mergeStats(prev, s);
      else m.set(bucket, s);
    }
    return out;
  }

  async listSeries(thing?: string): Promise<SeriesInfo[]> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT thing, metric, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts FROM ts_points ` +
        `${thing ? 'WHERE thing = $1 ' : ''}GROUP BY thing, metric ORDER BY thing, metric`,
      thing ? [thing] : [],
    );
    return rows.map((r) => ({
      thing: String(r.thing),
      metric: String(r.metric),
      points: Number(r.n),
      firstTs: Number(r.first_ts),
      lastTs: Number(r.last_ts),
    }));
  }

  async watermark(): Promise<number> {
    const rows = await this.db.query<{ value: unknown }>("SELECT value FROM ts_meta WHERE key = 'raw_from'");
    return rows[0] ? Number(rows[0].value) : 0;
  }

  async applyRetention(policy: RetentionPolicy, now = Date.now()) {
    const step = policy.rollupStepMs;
    const cutoff = Math.floor((now - policy.rawMaxAgeMs) / step) * step;
    const lastSql =
      this.db.kind === 'postgres'
        ? `SELECT DISTINCT ON (thing, metric, bucket) thing, metric, (ts - (ts % $2::bigint)) AS bucket, num, str, ts ` +
          `FROM ts_points WHERE ts < $1 ORDER BY thing, metric, bucket, ts DESC`
        : `SELECT thing, metric, (ts - (ts % $2)) AS bucket, num, str, max(ts) AS ts FROM ts_points WHERE ts < $1 GROUP BY 1, 2, 3`;
    const bucketExpr = this.db.kind === 'postgres' ? '(ts - (ts % $2::bigint))' : '(ts - (ts % $2))';
    const result = await this.db.transaction(async (tx) => {
      const stats = await tx.query<Record<string, unknown>>(
        `SELECT thing, metric, ${bucketExpr} AS bucket, count(*) AS count, sum(num) AS sum, min(num) AS min, max(num) AS max ` +
          `FROM ts_points WHERE ts < $1 GROUP BY 1, 2, 3`,
        [cutoff, step],
      );
      const lasts = new Map<string, Record<string, unknown>>();
      for (const r of await tx.query<Record<string, unknown>>(lastSql, [cutoff, step]))
        lasts.set(`${r.thing}\u0000${r.metric}\u0000${Number(r.bucket)}`, r);
      for (const r of stats) {
        const last = lasts.get(`${r.thing}\u0000${r.metric}\u0000${Number(r.bucket)}`);
        await tx.run(
          'INSERT INTO ts_rollups (thing, metric, step_ms, bucket, count, sum, min, max, last_num, last_str, last_ts) ' +
            'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (thing, metric, step_ms, bucket) DO UPDATE SET ' +
            'count = ts_rollups.count + excluded.count, sum = coalesce(ts_rollups.sum, 0) + coalesce(excluded.sum, 0), ' +
            'min = CASE WHEN ts_rollups.min IS NULL OR excluded.min < ts_rollups.min THEN excluded.min ELSE ts_rollups.min END, ' +
            'max = CASE WHEN ts_rollups.max IS NULL OR excluded.max > ts_rollups.max THEN excluded.max ELSE ts_rollups.max END, ' +
            'last_num = CASE WHEN excluded.last_ts >= ts_rollups.last_ts THEN excluded.last_num ELSE ts_rollups.last_num END, ' +
            'last_str = CASE WHEN excluded.last_ts >= ts_rollups.last_ts THEN excluded.last_str ELSE ts_rollups.last_str END, ' +
            'last_ts = CASE WHEN excluded.last_ts >= ts_rollups.last_ts THEN excluded.last_ts ELSE ts_rollups.last_ts END',
          [
            r.thing,
            r.metric,
            step,
            Number(r.bucket),
            Number(r.count),
            r.sum === null ? null : Number(r.sum),
            r.min === null ? null : Number(r.min),
            r.max === null ? null : Number(r.max),
            last?.num === null || last?.num === undefined ? null : Number(last.num),
            last?.str ?? null,
            Number(last?.ts ?? r.bucket),
          ],
        );
      }
      const deleted = await tx.run('DELETE FROM ts_points WHERE ts < $1', [cutoff]);
      if (policy.rollupMaxAgeMs > 0)
        await tx.run('DELETE FROM ts_rollups WHERE bucket < $1', [now - policy.rollupMaxAgeMs]);
      const prev = await tx.query<{ value: unknown }>("SELECT value FROM ts_meta WHERE key = 'raw_from'");
      const watermark = Math.max(cutoff, prev[0] ? Number(prev[0].value) : 0);
      await tx.run(
        "INSERT INTO ts_meta (key, value) VALUES ('raw_from', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [watermark],
      );
      return { rolledUp: stats.length, deleted, watermark };
    });
    if (this.db.kind === 'postgres') await this.dropEmptyPartitions(this.db, cutoff);
    return result;
  }

  /** Drop day partitions that lie wholly before the cutoff (their rows were just rolled up and deleted). */
  private async dropEmptyPartitions(db: PostgresDatabase, cutoff: number): Promise<void> {
    const rows = await db.query<{ name: string }>(
      'SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent ' +
        "WHERE p.relname = 'ts_points' AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
    );
    for (const { name } of rows) {
      const day = parseDay(name);
      if (day === null || (day + 1) * DAY_MS > cutoff) continue;
      await db.run(`DROP TABLE IF EXISTS ${name}`);
      this.partitions.delete(day);
    }
  }
}

const partitionName = (day: number) => (day < 0 ? `ts_points_dm${-day}` : `ts_points_d${day}`);
function parseDay(name: string): number | null {
  const m = /^ts_points_d(m?)(\d+)$/.exec(name);
  return m ? (m[1] ? -1 : 1) * Number(m[2]) : null;
}

export { emptyStats };
