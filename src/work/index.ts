/**
 * Bounded work queues: how any context takes work off a hot path (the broker's reserved-topic services, the
 * rules engine's evaluation). Bounded by items and bytes, a concurrency limit for async handlers, every
 * refusal counted with a reason, failures counted and logged but never fatal, graceful drain on close.
 * Metrics: thingstead_work_{queue_depth,queue_bytes,in_flight,processed_total,failed_total,dropped_total}{queue}.
 * Imports: observability.
 */
export { WorkQueue, type WorkQueueOptions, type WorkQueueStats, type WorkDropReason } from './queue.js';
