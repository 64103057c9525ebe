/** One measure: a number or a string, for one thing and metric at one instant (epoch ms). */
export interface Point {
  readonly thing: string;
  readonly metric: string;
  readonly ts: number;
  readonly value: number | string;
}

export const AGGREGATES = ['avg', 'min', 'max', 'sum', 'count', 'last', 'p50', 'p95', 'p99'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

export interface RangeQuery {
  /** Things to read; empty means every thing. */
  readonly things: readonly string[];
  readonly metric: string;
  /** Inclusive start and exclusive end, epoch ms. */
  readonly from: number;
  readonly to: number;
  readonly limit?: number;
  readonly order?: 'asc' | 'desc';
}

export interface DownsampleQuery extends Omit<RangeQuery, 'limit' | 'order'> {
  readonly stepMs: number;
  readonly agg: Aggregate;
  /** One series per thing, or one series over all the things asked for (a thing group). */
  readonly groupBy: 'thing' | 'all';
}

export interface Series {
  /** The thing name, or the group label when grouped. */
  readonly key: string;
  readonly points: ReadonlyArray<{ readonly ts: number; readonly value: number | string | null }>;
}

/** A partial aggregate of one bucket (what rollups keep once raw points are gone). */
export interface BucketStats {
  count: number;
  sum: number;
  min: number;
  max: number;
  numCount: number;
  last: number | string | null;
  lastTs: number;
}

export interface RetentionPolicy {
  /** Raw points older than this (ms) are rolled up then deleted. */
  readonly rawMaxAgeMs: number;
  /** Rollup bucket width (ms). */
  readonly rollupStepMs: number;
  /** Rollups older than this (ms) are deleted; 0 keeps them forever. */
  readonly rollupMaxAgeMs: number;
}

export interface SeriesInfo {
  readonly thing: string;
  readonly metric: string;
  readonly points: number;
  readonly firstTs: number;
  readonly lastTs: number;
}
