import type { Point } from '../../timeseries/index.js';
import { ActionError, type ActionRequest } from '../actions.js';

export type TimeseriesWriter = { write(points: readonly Point[]): Promise<void> };

/** Hand points to the built-in time-series writer (itself a bounded batching queue); failures retry. */
export async function writePoints(
  timeseries: TimeseriesWriter | null,
  r: Extract<ActionRequest, { kind: 'timeseries' }>,
): Promise<void> {
  if (!timeseries) throw new ActionError('time-series store is not available', true);
  try {
    await timeseries.write(r.points);
  } catch (err) {
    throw new ActionError(`time-series write failed: ${(err as Error).message}`, true);
  }
}
