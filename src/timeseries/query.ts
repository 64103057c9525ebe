import { emptyStats, mergeStats, type BucketQuery, type TimeseriesStore } from './store.js';
import type { Aggregate, BucketStats, DownsampleQuery, Series } from './types.js';

/** Largest number of buckets one downsampled query may produce per series. */
export const MAX_BUCKETS = 100_000;

/**
 * Downsample `[from, to)` into `stepMs` buckets (aligned to the epoch) with one aggregate, per thing or
 * over all the things asked for. Buckets already rolled up by retention answer avg/min/max/sum/count/last
 * from their rollups; percentiles need raw points and are null there.
 * @example await downsample(store, { things: ['t1'], metric: 'temperature', from, to, stepMs: 60_000, agg: 'avg', groupBy: 'thing' })
 */
export async function downsample(
  store: TimeseriesStore,
  q: DownsampleQuery,
  groupLabel = 'all',
): Promise<Series[]> {
  const bq: BucketQuery = {
    things: q.things,
    metric: q.metric,
    from: q.from,
    to: q.to,
    stepMs: q.stepMs,
    grouped: q.groupBy === 'all',
  };
  const stats = new Map<string, Map<number, BucketStats>>();
  const percentiles = new Map<string, Map<number, number[]>>();
  const rollups = await store.rollupStats(bq);
  if (q.agg.startsWith('p')) {
    for (const row of await store.bucketRows(bq)) {
      if (typeof row.value !== 'number' || Number.isNaN(row.value)) continue;
      let m = percentiles.get(row.key);
      if (!m) percentiles.set(row.key, (m = new Map()));
      const list = m.get(row.bucket);
      if (list) list.push(row.value);
      else m.set(row.bucket, [row.value]);
    }
  } else if (q.agg === 'last') {
    for (const row of await store.bucketRows(bq)) {
      const s = bucketOf(stats, row.key, row.bucket);
      s.count++;
      if (row.ts >= s.lastTs) {
        s.last = row.value;
        s.lastTs = row.ts;
      }
    }
  } else {
    for (const [key, m] of await store.bucketStats(bq))
      for (const [b, s] of m) mergeStats(bucketOf(stats, key, b), s);
  }
  for (const [key, m] of rollups) for (const [b, s] of m) mergeStats(bucketOf(stats, key, b), s);

  const keys = new Set([...stats.keys(), ...percentiles.keys()]);
  const series: Series[] = [];
  for (const key of [...keys].sort()) {
    const buckets = new Set([...(stats.get(key)?.keys() ?? []), ...(percentiles.get(key)?.keys() ?? [])]);
    const points = [...buckets]
      .sort((a, b) => a - b)
      .map((ts) => ({ ts, value: finish(q.agg, stats.get(key)?.get(ts), percentiles.get(key)?.get(ts)) }));
    series.push({ key: q.groupBy === 'all' ? groupLabel : key, points });
  }
  return series;
}

function bucketOf(stats: Map<string, Map<number, BucketStats>>, key: string, bucket: number): BucketStats {
  let m = stats.get(key);
  if (!m) stats.set(key, (m = new Map()));
  let s = m.get(bucket);
  if (!s) m.set(bucket, (s = emptyStats()));
  return s;
}

function finish(
  agg: Aggregate,
  s: BucketStats | undefined,
  values: number[] | undefined,
): number | string | null {
  switch (agg) {
    case 'count':
      return s?.count ?? 0;
    case 'sum':
      return s && s.numCount ? s.sum : null;
    case 'avg':
      return s && s.numCount ? s.sum / s.numCount : null;
    case 'min':
      return s && s.numCount ? s.min : null;
    case 'max':
      return s && s.numCount ? s.max : null;
    case 'last':
      return s?.last ?? null;
    default:
      return values && values.length ? percentile(values, Number(agg.slice(1)) / 100) : null;
  }
}

/** Linear interpolation between closest ranks (the common "type 7" definition). */
export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
