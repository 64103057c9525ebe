import { performance } from 'node:perf_hooks';
import { rateLimitedLog, type Logger, type Registry } from '../observability/index.js';
import { queueInstruments, type QueueInstruments } from './metrics.js';

/** Why an item was not taken. Every refusal is counted with one of these. */
export type WorkDropReason = 'queue_full' | 'shutdown';

export interface WorkQueueOptions<T> {
  /** Metrics label (`queue`) and log field; queues sharing a name are summed. */
  readonly name: string;
  /**
   * Handles one item. May be async: at most `concurrency` returned promises are pending at once. A throw or
   * a rejection is counted (failed), logged (rate-limited) and passed to `onError`; never fatal.
   */
  readonly handle: (item: T) => void | Promise<void>;
  /** Items waiting (not yet handed to `handle`); beyond it `push` refuses with queue_full. */
  readonly maxItems: number;
  /** Bytes waiting, as measured by `sizeOf`; beyond it `push` refuses with queue_full. Default: unbounded. */
  readonly maxBytes?: number;
  /** Memory an item holds while it waits (payload, topic). Required for `maxBytes` to mean anything. */
  readonly sizeOf?: (item: T) => number;
  /** Async handlers in flight at once (default 1). Synchronous handlers run one after another regardless. */
  readonly concurrency?: number;
  /** Longest run of the drain loop before it yields to I/O (default 4 ms). */
  readonly sliceMs?: number;
  readonly logger: Logger;
  /** Registers thingstead_work_* instruments (labelled by `name`) on this registry. */
  readonly metrics?: Registry | undefined;
  /** Called after a failure was counted and logged (per-item accounting by the owner). Must not throw. */
  readonly onError?: (item: T, err: unknown) => void;
  /** Called for each refused item, after it was counted (per-item accounting by the owner). Must not throw. */
  readonly onDrop?: (item: T, reason: WorkDropReason) => void;
}

/** Counters since the queue was made (the Prometheus instruments carry the same). */
export interface WorkQueueStats {
  readonly depth: number;
  readonly bytes: number;
  readonly inFlight: number;
  readonly processed: number;
  readonly failed: number;
  readonly dropped: Readonly<Record<WorkDropReason, number>>;
}

/**
 * A bounded work queue: the one way in the platform to take work off a hot path.
 *
 * Contract:
 * - `push` is for hot paths: synchronous, no I/O, O(1), and it never runs the handler on the caller's stack
 *   (the drain starts on a later turn, via setImmediate). It refuses (returns false, counted as dropped
 *   with a reason) when the queue holds `maxItems` items or `maxBytes` bytes, or once `close` was called.
 * - Items are started in push order. Synchronous handlers are run back to back in slices of about `sliceMs`
 *   so the event loop keeps serving sockets; async handlers are started up to `concurrency` at once.
 * - A handler failure is counted, logged and reported to `onError`; the queue goes on.
 * - `close` stops taking work, handles what is queued, and waits for what is in flight (graceful drain).
 *
 * @example
 * const q = new WorkQueue({ name: 'shadow', maxItems: 1000, logger, handle: async (r) => serve(r) });
 * if (!q.push(request)) reply429(request);
 */
export class WorkQueue<T> {
  private items: Array<T | undefined> = [];
  private sizes: number[] | null;
  private head = 0;
  private scheduled = false;
  private running = 0;
  private closing = false;
  private waiters: Array<() => void> = [];
  private heldBytes = 0;
  private readonly concurrency: number;
  private readonly maxBytes: number;
  private readonly sliceMs: number;
  private readonly warn: (obj: object, msg: string) => void;
  private readonly instruments: QueueInstruments | null;
  /** Plain numbers on the hot path; the Prometheus instruments read them at scrape time. */
  readonly counts = { processed: 0, failed: 0, dropped: { queue_full: 0, shutdown: 0 } };

  constructor(private readonly options: WorkQueueOptions<T>) {
    if (!(options.maxItems >= 1)) throw new RangeError(`work queue ${options.name}: maxItems must be >= 1`);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.maxBytes = options.maxBytes ?? Infinity;
    this.sizes = options.sizeOf ? [] : null;
    this.sliceMs = options.sliceMs ?? 4;
    this.warn = rateLimitedLog(options.logger);
    this.instruments = options.metrics ? queueInstruments(options.metrics) : null;
    this.instruments?.add(this);
  }

  get name(): string {
    return this.options.name;
  }

  /** Items waiting to be started. */
  get depth(): number {
    return this.items.length - this.head;
  }

  /** Bytes held by waiting items (0 without `sizeOf`). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Async handlers started and not yet settled. */
  get inFlight(): number {
    return this.running;
  }

  /** Queue an item. Hot path: no await, no I/O; false when refused (counted, and `onDrop` told why). */
  push(item: T): boolean {
    if (this.closing) return this.refuse(item, 'shutdown');
    if (this.items.length - this.head >= this.options.maxItems) return this.refuse(item, 'queue_full');
    if (this.sizes !== null) {
      const size = this.options.sizeOf!(item);
      // One item larger than the whole budget is still taken into an empty queue (else it could never run).
      if (this.heldBytes + size > this.maxBytes && this.items.length > this.head)
        return this.refuse(item, 'queue_full');
      this.sizes.push(size);
      this.heldBytes += size;
    }
    this.items.push(item);
    this.schedule();
    return true;
  }

  stats(): WorkQueueStats {
    const c = this.counts;
    return {
      depth: this.depth,
      bytes: this.heldBytes,
      inFlight: this.running,
      processed: c.processed,
      failed: c.failed,
      dropped: { ...c.dropped },
    };
  }

  /** Resolves once nothing is waiting and nothing is in flight (at once if so now). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Stop taking work (later pushes are dropped with reason shutdown), then handle everything queued and
   * wait for what is in flight. With `timeoutMs`, what is still queued after it is dropped (shutdown) and
   * in-flight handlers are no longer waited for.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing = true;
    const drained = this.idle();
    if (options.timeoutMs === undefined) await drained;
    else {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), options.timeoutMs)));
      const outcome = await Promise.race([drained, late]);
      clearTimeout(timer);
      if (outcome === 'late') {
        while (this.head < this.items.length) this.refuse(this.take(), 'shutdown');
        this.compact();
      }
    }
    this.instruments?.remove(this);
  }

  private refuse(item: T, reason: WorkDropReason): false {
    this.counts.dropped[reason]++;
    if (this.options.onDrop) this.report(() => this.options.onDrop!(item, reason));
    return false;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  private take(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    if (this.sizes !== null) this.heldBytes -= this.sizes[this.head]!;
    this.head++;
    return item;
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    const started = performance.now();
    let n = 0;
    while (this.head < this.items.length && this.running < this.concurrency) {
      this.start(this.take());
      if ((++n & 63) === 0 && performance.now() - started > this.sliceMs) break;
    }
    this.compact();
    if (this.head < this.items.length && this.running < this.concurrency) this.schedule();
    else if (this.isIdle()) this.wake();
  };

  private start(item: T): void {
    let result: void | Promise<void>;
    try {
      result = this.options.handle(item);
    } catch (err) {
      this.fail(item, err);
      return;
    }
    if (result === undefined || typeof (result as { then?: unknown }).then !== 'function') {
      this.counts.processed++;
      return;
    }
    this.running++;
    result.then(
      () => this.settled(item, false, null),
      (err: unknown) => this.settled(item, true, err),
    );
  }

  private settled(item: T, failed: boolean, err: unknown): void {
    this.running--;
    if (failed) this.fail(item, err);
    else this.counts.processed++;
    if (this.head < this.items.length) this.schedule();
    else if (this.isIdle()) this.wake();
  }

  private fail(item: T, err: unknown): void {
    this.counts.failed++;
    this.warn({ err, queue: this.options.name }, 'work queue handler failed');
    if (this.options.onError) this.report(() => this.options.onError!(item, err));
  }

  /** Owner callbacks must not throw; if one does, it is logged and the queue goes on. */
  private report(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.warn({ err, queue: this.options.name }, 'work queue callback threw');
    }
  }

  private compact(): void {
    if (this.head === this.items.length) {
      if (this.head > 0) {
        this.items = [];
        if (this.sizes !== null) this.sizes = [];
        this.head = 0;
      }
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.sizes?.splice(0, this.head);
      this.head = 0;
    }
  }

  private isIdle(): boolean {
    return this.head === this.items.length && this.running === 0;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const list = this.waiters;
    this.waiters = [];
    for (const w of list) w();
  }
}
