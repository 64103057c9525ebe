import { Counter, Gauge, type Registry } from '../observability/index.js';
import type { WorkDropReason } from './queue.js';

/** What the instruments read of a queue at scrape time. */
export interface MeasuredQueue {
  readonly name: string;
  readonly depth: number;
  readonly bytes: number;
  readonly inFlight: number;
  readonly counts: {
    readonly processed: number;
    readonly failed: number;
    readonly dropped: Readonly<Record<WorkDropReason, number>>;
  };
}

export interface QueueInstruments {
  add(q: MeasuredQueue): void;
  remove(q: MeasuredQueue): void;
}

const REASONS: readonly WorkDropReason[] = ['queue_full', 'shutdown'];
const byRegistry = new WeakMap<Registry, QueueInstruments>();

/**
 * The thingstead_work_* instruments of one registry, shared by every queue on it (labelled `queue`).
 * Queues count in plain numbers; counters are advanced by the delta at scrape time (no label hashing on the
 * hot path), gauges are set from the live queues. A closed queue's counts stay in the counters.
 */
export function queueInstruments(registry: Registry): QueueInstruments {
  const known = byRegistry.get(registry);
  if (known) return known;
  const live = new Set<MeasuredQueue>();
  /** Counts already added to the counters, per queue. */
  const reported = new Map<MeasuredQueue, { processed: number; failed: number; dropped: number[] }>();
  const registers = [registry];
  // Every counter brings all of them up to date when collected (idempotent), whichever is read first.
  const collect = () => {
    for (const q of live) flush(q);
  };
  const processed = new Counter({
    name: 'thingstead_work_processed_total',
    help: 'Work items handled without error, by queue',
    labelNames: ['queue'],
    registers,
    collect,
  });
  const failed = new Counter({
    name: 'thingstead_work_failed_total',
    help: 'Work items whose handler threw or rejected, by queue',
    labelNames: ['queue'],
    registers,
    collect,
  });
  const dropped = new Counter({
    name: 'thingstead_work_dropped_total',
    help: 'Work items refused, by queue and reason (queue_full, shutdown)',
    labelNames: ['queue', 'reason'],
    registers,
    collect,
  });
  const flush = (q: MeasuredQueue) => {
    let r = reported.get(q);
    if (!r) reported.set(q, (r = { processed: 0, failed: 0, dropped: REASONS.map(() => 0) }));
    const c = q.counts;
    if (c.processed > r.processed) processed.inc({ queue: q.name }, c.processed - r.processed);
    if (c.failed > r.failed) failed.inc({ queue: q.name }, c.failed - r.failed);
    REASONS.forEach((reason, i) => {
      const n = c.dropped[reason];
      if (n > r.dropped[i]!) dropped.inc({ queue: q.name, reason }, n - r.dropped[i]!);
      r.dropped[i] = n;
    });
    r.processed = c.processed;
    r.failed = c.failed;
  };
  const gauge = (name: string, help: string, read: (q: MeasuredQueue) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'],
      registers,
      collect() {
        this.reset();
        const sums = new Map<string, number>();
        for (const q of live) sums.set(q.name, (sums.get(q.name) ?? 0) + read(q));
        for (const [queue, v] of sums) this.set({ queue }, v);
      },
    });
  gauge('thingstead_work_queue_depth', 'Work items waiting, by queue', (q) => q.depth);
  gauge('thingstead_work_queue_bytes', 'Bytes held by waiting work items, by queue', (q) => q.bytes);
  gauge('thingstead_work_in_flight', 'Async work items started and not settled, by queue', (q) => q.inFlight);
  const instruments: QueueInstruments = {
    add: (q) => void live.add(q),
    remove: (q) => {
      flush(q);
      live.delete(q);
      reported.delete(q);
    },
  };
  byRegistry.set(registry, instruments);
  return instruments;
}
