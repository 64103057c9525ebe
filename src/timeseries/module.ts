import type { StartedContext } from '../api/index.js';
import { timeseriesOperations } from './api.js';
import { createTimeseries, type Timeseries, type TimeseriesOptions } from './service.js';

/** Start the time-series context: the store with its writer and retention, and its operations. */
export async function startTimeseries(options: TimeseriesOptions): Promise<StartedContext<Timeseries>> {
  const timeseries = await createTimeseries(options);
  return {
    name: 'timeseries',
    service: timeseries,
    operations: timeseriesOperations(timeseries),
    close: () => timeseries.close(),
  };
}
