/**
 * The batched store writer behind the durability contract in core.ts: operations are collected and applied
 * in one transaction per event-loop turn, in order; a failed batch is kept ahead of anything newer and
 * retried with backoff (100 ms to 5 s) while the store is reported degraded; `afterDurable` tells an
 * acknowledgement when what it depends on is written (or failed); past STORE_BACKLOG_OPS operations or
 * STORE_BACKLOG_BYTES of a failing store, `backlogFull()` makes the broker refuse what would add to it.
 *
 * Contract: `persist` is on the hot path (synchronous, O(1)); the store is only touched from `writeBatch`,
 * one batch at a time (`storeChain`); callbacks run on a later turn and a throwing one is counted, not fatal.
 */
import type { Logger } from '../observability/index.js';
import type { BrokerMetrics } from './metrics.js';
import type { MqttStore, StoreOp } from './store.js';

export class StoreBatcher {
  /** Store operations not yet written, in order (a failed batch is put back at the front). */
  private ops: StoreOp[] = [];
  /** Callbacks waiting for every op now in `ops` to be written (or to fail). */
  private durableWaiters: Array<(failure: StoreFailure | null) => void> = [];
  private opsScheduled = false;
  private storeChain: Promise<void> = Promise.resolve();
  /** Approximate bytes held by `ops` (payloads and topics), for the backlog bound. */
  private opsBytes = 0;
  /**
   * Operations ever persisted: a caller compares it before and after `route()` to learn whether routing
   * wrote to the store (and so whether an acknowledgement must wait for `afterDurable`).
   */
  opsCount = 0;
  /** Set while store writes fail (the first failure of the streak); cleared by the next successful batch. */
  storeFailure: StoreFailure | null = null;
  /** Set by the core's close(): no retry timer is started any more. */
  closing = false;
  private retryDelay = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly flushLater = () => this.flush();

  constructor(
    private readonly store: MqttStore,
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
    private readonly onBackgroundError: (task: string, err: unknown) => void,
  ) {}

  persist(op: StoreOp): void {
    this.ops.push(op);
    this.opsCount++;
    this.opsBytes += opBytes(op);
    this.schedule();
  }

  /**
   * Call `done` once every operation persisted so far is written (null), or with the failure of the batch
   * that held them. Used by acknowledgements that promise durability. `done` runs on a later turn.
   */
  afterDurable(done: (failure: StoreFailure | null) => void): void {
    const failing = this.storeFailure;
    if (failing !== null) {
      // Writes are failing and wait for the next retry (up to 5 s away): say so now rather than hold the
      // client. The operations stay in the retried backlog, so they may still be written later.
      setImmediate(() => {
        try {
          done(failing);
        } catch (err) {
          this.onBackgroundError('durability_callback', err);
        }
      });
      return;
    }
    this.durableWaiters.push(done);
    this.schedule();
  }

  /** True when the store is failing and its backlog is at its bound: refuse what would add to it. */
  backlogFull(): boolean {
    return (
      this.storeFailure !== null &&
      (this.ops.length >= STORE_BACKLOG_OPS || this.opsBytes >= STORE_BACKLOG_BYTES)
    );
  }

  /** Problems for /healthz: empty while the store writes. */
  health(): string[] {
    const f = this.storeFailure;
    if (!f) return [];
    return [
      `mqtt store degraded since ${new Date(f.since).toISOString()}: ${f.code} (${f.message}); ` +
        `${this.ops.length} operations waiting, retrying every ${this.retryDelay} ms`,
    ];
  }

  /** Store operations not yet written (for the gauge). */
  get pending(): number {
    return this.ops.length;
  }

  private schedule(): void {
    // While a failed batch waits for its retry timer, new work joins it instead of hammering the store.
    if (this.opsScheduled || this.retryTimer !== null) return;
    this.opsScheduled = true;
    setImmediate(this.flushLater);
  }

  flush(): void {
    this.opsScheduled = false;
    // The batch is taken when the chain reaches it, not now: a failed earlier batch is put back in front
    // of it first, so operations always reach the store in the order they were made.
    this.storeChain = this.storeChain
      .then(() => this.writeBatch())
      .catch((err: unknown) => this.onBackgroundError('store_batch', err));
  }

  private async writeBatch(): Promise<void> {
    const batch = this.ops;
    const waiters = this.durableWaiters;
    if (batch.length === 0 && waiters.length === 0) return;
    this.ops = [];
    this.durableWaiters = [];
    const bytes = this.opsBytes;
    this.opsBytes = 0;
    let failure: StoreFailure | null = null;
    try {
      if (batch.length) await this.store.apply(batch);
      this.metrics.storeBatches.inc();
    } catch (err) {
      failure = storeFailure(err, this.storeFailure?.since ?? Date.now());
    }
    if (failure === null) {
      if (this.storeFailure) {
        this.log.warn(
          { code: this.storeFailure.code, downMs: Date.now() - this.storeFailure.since, ops: batch.length },
          'mqtt store writes recovered; the retried batch is written',
        );
        this.storeFailure = null;
        this.retryDelay = 0;
        this.metrics.storeDegraded.set(0);
      }
    } else {
      this.metrics.storeFailures.inc({ code: failure.code });
      this.metrics.storeDegraded.set(1);
      if (!this.storeFailure)
        this.log.error(
          { code: failure.code, err: failure.message, ops: batch.length },
          'mqtt store write failed; keeping the batch and retrying (acknowledgements that need it are refused)',
        );
      this.storeFailure = failure;
      // Keep the batch, ahead of anything made since.
      this.ops = batch.length ? (this.ops.length ? batch.concat(this.ops) : batch) : this.ops;
      this.opsBytes += bytes;
      this.retryDelay = Math.min(Math.max(100, this.retryDelay * 2), 5000);
      if (this.retryTimer === null && !this.closing) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.flush();
        }, this.retryDelay).unref();
      }
    }
    for (const w of waiters) {
      try {
        w(failure);
      } catch (err) {
        this.onBackgroundError('durability_callback', err);
      }
    }
  }

  /** Shutdown: write what is waiting now (no retry timer), and log what could not be written. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.flush();
    await this.storeChain;
    if (this.ops.length)
      this.log.error(
        { ops: this.ops.length, code: this.storeFailure?.code },
        'mqtt store unavailable at shutdown: operations not written',
      );
  }
}

/** Bounds on the store backlog while writes fail (then QoS 1/2 and retained PUBLISHes are refused). */
export const STORE_BACKLOG_OPS = 100_000;
export const STORE_BACKLOG_BYTES = 64 * 1024 * 1024;

/** Why store writes fail; `full` when the disk (or the database's quota) is full. */
export interface StoreFailure {
  readonly code: string;
  readonly message: string;
  readonly full: boolean;
  /** Epoch ms of the first failure of this streak. */
  readonly since: number;
}

function storeFailure(err: unknown, since: number): StoreFailure {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'UNKNOWN';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // SQLite: SQLITE_FULL; the OS: ENOSPC / EDQUOT; PostgreSQL: 53100 disk_full, 53200 out_of_memory.
  const full = /^(SQLITE_FULL|ENOSPC|EDQUOT|53100)$/.test(code) || /disk (is )?full|no space/i.test(message);
  return { code, message, full, since };
}

/** Approximate memory an operation holds until written. */
function opBytes(op: StoreOp): number {
  if (op.op === 'enqueue' || op.op === 'retain')
    return 64 + op.message.payload.length + op.message.topic.length;
  return 64;
}
