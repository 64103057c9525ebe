/**
 * Analytics exports: telemetry (the time-series store) and usage (the ledger) as Parquet files in
 * Hive-style partitions that Spark, DuckDB and pandas read as one dataset without conversion:
 *
 *   <dir>/telemetry/date=YYYY-MM-DD/thing=<thing>/part-<from>-<to>.parquet
 *   <dir>/usage/date=YYYY-MM-DD/billing_group=<group>/part-<from>-<to>.parquet
 *
 * (`from`/`to` are the export window, compact UTC; partition columns are only in the path, as Spark wants.)
 * Exports run on demand (POST /usage/export, `thingstead usage export`) or continuously every
 * `metering.export.intervalMs` for the window that ended `lagMs` ago; the continuous watermark is kept in
 * `<dir>/_export_state.json`, so a restart goes on where it stopped. Usage is exported in whole UTC hours
 * (an hour still being counted is left for the next run). A re-export of a window replaces its files.
 *
 * One export at a time (ExportBusy otherwise); memory holds one thing's points of the window at a time (read in
 * pages of 50,000), so export a busy fleet in windows of an hour or a day.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AwsOperation, StartedContext } from '../api/index.js';
import type { Config } from '../config/index.js';
import { E } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { parseInstant, type Timeseries } from '../timeseries/index.js';
import type { Metering } from './module.js';
import { partitionValue, writeTelemetryFile, writeUsageFile, type TelemetryRecord } from './parquet.js';
import { HOUR_MS, hourOf } from './units.js';

export type ExportKind = 'telemetry' | 'usage';
const KINDS: readonly ExportKind[] = ['telemetry', 'usage'];

export interface ExportResult {
  readonly kind: ExportKind;
  readonly from: string;
  readonly to: string;
  readonly files: string[];
  readonly rows: number;
}

export interface Exports {
  readonly dir: string;
  /** Export one kind over [from, to) now. Throws ExportBusy while another export runs. */
  exportNow(kind: ExportKind, from: number, to: number): Promise<ExportResult>;
}

export interface ExportOptions {
  readonly metering: Metering;
  readonly timeseries: Pick<Timeseries, 'listSeries' | 'queryRange'>;
  readonly config: Config['metering']['export'];
  readonly dataDir: string;
  readonly logger: Logger;
  readonly now?: (() => number) | undefined;
  /** Cluster mode: the continuous export runs only on the node holding `metering.export`. */
  readonly runsHere?: ((task: string) => boolean) | undefined;
}

const DAY_MS = 86_400_000;
/** Points read per query while exporting one series (memory bound). */
const PAGE = 50_000;

const compact = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Start the exports: the on-demand operation, and the continuous loop when an interval is set. */
export function startExports(options: ExportOptions): StartedContext<Exports> {
  const now = options.now ?? Date.now;
  const dir = resolve(options.config.dir ?? join(options.dataDir, 'exports'));
  let running: Promise<unknown> | null = null;

  const exclusive = async <T>(work: () => Promise<T>): Promise<T> => {
    if (running) throw E.ExportBusy();
    const p = work();
    running = p;
    try {
      return await p;
    } finally {
      running = null;
    }
  };

  const exportTelemetry = async (from: number, to: number): Promise<ExportResult> => {
    // (date, thing) -> records of the window; written once every series of the thing is read.
    const files: string[] = [];
    let rows = 0;
    const series = (await options.timeseries.listSeries()).filter((s) => s.lastTs >= from && s.firstTs < to);
    const things = [...new Set(series.map((s) => s.thing))].sort();
    for (const thing of things) {
      const byDate = new Map<string, TelemetryRecord[]>();
      for (const s of series.filter((x) => x.thing === thing)) {
        let start = from;
        for (;;) {
          const points = await options.timeseries.queryRange({
            things: [thing],
            metric: s.metric,
            from: start,
            to,
            limit: PAGE,
            order: 'asc',
          });
          for (const p of points) {
            const date = dateOf(p.ts);
            let list = byDate.get(date);
            if (!list) byDate.set(date, (list = []));
            list.push({ ts: p.ts, metric: p.metric, value: p.value });
          }
          if (points.length < PAGE) break;
          start = points[points.length - 1]!.ts + 1;
        }
      }
      for (const [date, records] of byDate) {
        records.sort((a, b) => a.ts - b.ts || (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0));
        const file = join(
          dir,
          'telemetry',
          `date=${date}`,
          `thing=${partitionValue(thing)}`,
          `part-${compact(from)}-${compact(to)}.parquet`,
        );
        writeTelemetryFile(file, records);
        files.push(file);
        rows += records.length;
      }
    }
    return {
      kind: 'telemetry',
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      files,
      rows,
    };
  };

  const exportUsage = async (from: number, to: number): Promise<ExportResult> => {
    if (options.metering.meter) await options.metering.flush();
    const ledger = await options.metering.query({ from: hourOf(from), to });
    const parts = new Map<string, typeof ledger>();
    for (const r of ledger) {
      const key = `${dateOf(r.hour)}\u0000${r.billingGroup}`;
      let list = parts.get(key);
      if (!list) parts.set(key, (list = []));
      list.push(r);
    }
    const files: string[] = [];
    for (const [key, list] of parts) {
      const [date, group] = key.split('\u0000') as [string, string];
      const file = join(
        dir,
        'usage',
        `date=${date}`,
        `billing_group=${partitionValue(group)}`,
        `part-${compact(from)}-${compact(to)}.parquet`,
      );
      writeUsageFile(file, list);
      files.push(file);
    }
    return {
      kind: 'usage',
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      files,
      rows: ledger.length,
    };
  };

  const exportNow = (kind: ExportKind, from: number, to: number) => {
    if (from >= to) throw E.UsageRange();
    return exclusive(() => (kind === 'telemetry' ? exportTelemetry(from, to) : exportUsage(from, to)));
  };

  // ---- continuous --------------------------------------------------------------------------------------
  const stateFile = join(dir, '_export_state.json');
  const readState = (): Partial<Record<ExportKind, number>> => {
    try {
      return existsSync(stateFile)
        ? (JSON.parse(readFileSync(stateFile, 'utf8')) as Record<ExportKind, number>)
        : {};
    } catch {
      return {};
    }
  };
  const interval = options.config.intervalMs;
  const tick = async () => {
    if (running || options.runsHere?.('metering.export') === false) return;
    const state = readState();
    const end = now() - options.config.lagMs;
    for (const kind of KINDS) {
      // Usage in whole hours; telemetry in whole intervals.
      const to = kind === 'usage' ? hourOf(end) : Math.floor(end / interval) * interval;
      const from = state[kind] ?? (kind === 'usage' ? to - HOUR_MS : to - interval);
      if (from >= to) continue;
      await exportNow(kind, from, Math.min(to, from + DAY_MS));
      state[kind] = Math.min(to, from + DAY_MS);
      mkdirSync(dir, { recursive: true });
      writeFileSync(stateFile, JSON.stringify(state) + '\n');
    }
  };
  const timer =
    interval > 0
      ? setInterval(() => {
          tick().catch((err: unknown) =>
            options.logger.warn({ err }, 'continuous export failed; retried next interval'),
          );
        }, interval)
      : null;
  timer?.unref();

  const operations: AwsOperation[] = [
    {
      name: 'ExportAnalytics',
      service: 'iot',
      method: 'POST',
      path: '/usage/export',
      async handler(req) {
        const b = req.body as { kind?: unknown; from?: unknown; to?: unknown };
        const kinds = b.kind === undefined ? KINDS : [b.kind];
        for (const k of kinds) if (!KINDS.includes(k as ExportKind)) throw E.ExportKind({ kinds: KINDS });
        const t = now();
        const instant = (v: unknown) =>
          typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
        const to = parseInstant(instant(b.to), t, t, 'to');
        const from = parseInstant(instant(b.from), to - DAY_MS, t, 'from');
        const results: ExportResult[] = [];
        for (const k of kinds) results.push(await exportNow(k as ExportKind, from, to));
        return { dir, exports: results };
      },
    },
  ];

  return {
    name: 'metering exports',
    service: { dir, exportNow },
    operations,
    async close() {
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
