/**
 * The built-in time-series store: numeric and string measures per thing, metric and time, written in
 * batches (SQLite by default, PostgreSQL partitioned by day in scale-out mode), queried raw or downsampled
 * with aggregates, with retention into rollups. The rules engine's `timeseries` action writes here.
 * `startTimeseries` starts it as a context module.
 * Imports: errors, observability, store; types only from api.
 */
export { createTimeseries, type Timeseries, type TimeseriesOptions } from './service.js';
export { createTimeseriesStore, type TimeseriesStore } from './store.js';
export { BatchWriter, type WriterOptions } from './writer.js';
export { downsample, percentile } from './query.js';
export {
  AGGREGATES,
  type Aggregate,
  type DownsampleQuery,
  type Point,
  type RangeQuery,
  type RetentionPolicy,
  type Series,
  type SeriesInfo,
} from './types.js';
export { startTimeseries } from './module.js';
export { timeseriesOperations, attachTimeseriesTail, parseDuration, parseInstant } from './api.js';
