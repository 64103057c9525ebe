import type { Migration } from '../store/index.js';

/**
 * Time-series schema. Points are keyed by (thing, metric, ts): a retried write of the same point replaces
 * it, so at-least-once delivery from the rules outbox never duplicates a measure.
 * PostgreSQL partitions `ts_points` by time range (one partition per day, created on demand).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'points, rollups, retention watermark',
    sqlite: `
      CREATE TABLE ts_points (
        thing TEXT NOT NULL, metric TEXT NOT NULL, ts INTEGER NOT NULL, num REAL, str TEXT,
        PRIMARY KEY (thing, metric, ts)) WITHOUT ROWID;
      CREATE INDEX ts_points_metric_ts ON ts_points (metric, ts);
      CREATE TABLE ts_rollups (
        thing TEXT NOT NULL, metric TEXT NOT NULL, step_ms INTEGER NOT NULL, bucket INTEGER NOT NULL,
        count INTEGER NOT NULL, sum REAL, min REAL, max REAL, last_num REAL, last_str TEXT, last_ts INTEGER NOT NULL,
        PRIMARY KEY (thing, metric, step_ms, bucket)) WITHOUT ROWID;
      CREATE TABLE ts_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `,
    postgres: `
      CREATE TABLE ts_points (
        thing TEXT NOT NULL, metric TEXT NOT NULL, ts BIGINT NOT NULL, num DOUBLE PRECISION, str TEXT,
        PRIMARY KEY (thing, metric, ts)) PARTITION BY RANGE (ts);
      CREATE INDEX ts_points_metric_ts ON ts_points (metric, ts);
      CREATE TABLE ts_rollups (
        thing TEXT NOT NULL, metric TEXT NOT NULL, step_ms BIGINT NOT NULL, bucket BIGINT NOT NULL,
        count BIGINT NOT NULL, sum DOUBLE PRECISION, min DOUBLE PRECISION, max DOUBLE PRECISION,
        last_num DOUBLE PRECISION, last_str TEXT, last_ts BIGINT NOT NULL,
        PRIMARY KEY (thing, metric, step_ms, bucket));
      CREATE TABLE ts_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    `,
  },
];
