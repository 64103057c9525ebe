import { Counter, Gauge, type Logger, type Registry } from '../observability/index.js';
import type { Database } from '../store/index.js';
import { downsample } from './query.js';
import { createTimeseriesStore, type TimeseriesStore } from './store.js';
import type { DownsampleQuery, Point, RangeQuery, RetentionPolicy, Series, SeriesInfo } from './types.js';
import { BatchWriter, type WriterOptions } from './writer.js';

export interface TimeseriesOptions {
  readonly db: Database;
  readonly logger: Logger;
  readonly metrics?: Registry;
  readonly writer?: WriterOptions;
  /** Retention run periodically when set (on PostgreSQL by the node holding the advisory lock). */
  readonly retention?: (RetentionPolicy & { readonly intervalMs: number }) | null;
  /** Resolve a thing group to its member things (group queries); from the registry when present. */
  readonly resolveGroup?: ((group: string) => Promise<string[]>) | null;
  /** Cluster mode: scheduled retention runs only on the node holding `timeseries.retention`. */
  readonly runsHere?: ((task: string) => boolean) | undefined;
}

export type TailFilter = { readonly thing?: string; readonly metric?: string };

/** The time-series service: store + batch writer + queries + live tail + retention schedule. */
export interface Timeseries {
  readonly store: TimeseriesStore;
  readonly writer: BatchWriter;
  /** Resolves once the points are committed. */
  write(points: readonly Point[]): Promise<void>;
  queryRange(q: RangeQuery): Promise<Point[]>;
  downsample(q: DownsampleQuery, groupLabel?: string): Promise<Series[]>;
  listSeries(thing?: string): Promise<SeriesInfo[]>;
  /** Committed points matching the filter, as they are written. Returns an unsubscribe. */
  tail(filter: TailFilter, listener: (points: readonly Point[]) => void): () => void;
  /** Resolve a thing group to its member things (null: group queries are refused). */
  readonly resolveGroup: ((group: string) => Promise<string[]>) | null;
  applyRetention(policy: RetentionPolicy, now?: number): ReturnType<TimeseriesStore['applyRetention']>;
  close(): Promise<void>;
}

/** @example const ts = await createTimeseries({ db, logger }); await ts.write([{ thing: 't1', metric: 'temp', ts: Date.now(), value: 21.5 }]); */
export async function createTimeseries(options: TimeseriesOptions): Promise<Timeseries> {
  const store = await createTimeseriesStore(options.db);
  const log = options.logger;
  const writer = new BatchWriter(store, {
    ...options.writer,
    onError: (err, what) => log.error({ err }, `time-series writer: ${what} failed unexpectedly`),
  });
  if (options.metrics) registerMetrics(options.metrics, writer);

  let retentionTimer: NodeJS.Timeout | null = null;
  let retentionRun: Promise<unknown> | null = null;
  const retention = options.retention;
  if (retention && retention.intervalMs > 0) {
    retentionTimer = setInterval(() => {
      if (retentionRun || options.runsHere?.('timeseries.retention') === false) return;
      retentionRun = runRetentionOnce(options.db, store, retention)
        .catch((err: unknown) => log.warn({ err }, 'time-series retention failed'))
        .finally(() => (retentionRun = null));
    }, retention.intervalMs);
    retentionTimer.unref();
  }

  const service: Timeseries = {
    store,
    writer,
    resolveGroup: options.resolveGroup ?? null,
    write: (points) => writer.write(points),
    queryRange: (q) => store.queryRange(q),
    downsample: (q, label) => downsample(store, q, label),
    listSeries: (thing) => store.listSeries(thing),
    tail(filter, listener) {
      return writer.onCommit((points) => {
        const matched = points.filter(
          (p) =>
            (!filter.thing || p.thing === filter.thing) && (!filter.metric || p.metric === filter.metric),
        );
        if (matched.length) listener(matched);
      });
    },
    applyRetention: (policy, now) => store.applyRetention(policy, now),
    async close() {
      if (retentionTimer) clearInterval(retentionTimer);
      await retentionRun;
      await writer.close();
    },
  };
  return service;
}

/** On PostgreSQL only the node holding the advisory lock runs retention (work that must run once). */
async function runRetentionOnce(
  db: Database,
  store: TimeseriesStore,
  policy: RetentionPolicy,
): Promise<void> {
  if (db.kind === 'sqlite') {
    await store.applyRetention(policy);
    return;
  }
  const client = await db.raw.connect();
  try {
    const { rows } = await client.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock(hashtext('thingstead-ts-retention')) AS ok",
    );
    if (!rows[0]?.ok) return;
    try {
      await store.applyRetention(policy);
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext('thingstead-ts-retention'))");
    }
  } finally {
    client.release();
  }
}

function registerMetrics(registry: Registry, writer: BatchWriter): void {
  const s = writer.stats;
  new Counter({
    name: 'thingstead_timeseries_points_written_total',
    help: 'Time-series points committed',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(s.written);
    },
  });
  new Counter({
    name: 'thingstead_timeseries_points_refused_total',
    help: 'Time-series points refused because the write queue was full',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(s.refused);
    },
  });
  new Gauge({
    name: 'thingstead_timeseries_points_pending',
    help: 'Time-series points waiting for their batch',
    registers: [registry],
    collect() {
      this.set(s.pending);
    },
  });
}
