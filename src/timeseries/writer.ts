import { E } from '../errors/index.js';
import type { TimeseriesStore } from './store.js';
import type { Point } from './types.js';

export interface WriterOptions {
  /** Points per transaction. */
  readonly maxBatch?: number;
  /** Longest a point waits before its batch is flushed (ms). */
  readonly flushMs?: number;
  /** Points waiting to be written; beyond it `write` is refused (and counted), never queued without bound. */
  readonly maxPending?: number;
  /** Told about a throw in a commit listener or the flush loop (counted in stats.internalErrors). */
  readonly onError?: (err: unknown, what: string) => void;
}

interface Pending {
  readonly points: readonly Point[];
  resolve(): void;
  reject(err: unknown): void;
}

export interface WriterStats {
  written: number;
  batches: number;
  refused: number;
  failed: number;
  pending: number;
  /** Throws caught by the last line of defence (a commit listener, the flush loop): bugs, never fatal. */
  internalErrors: number;
}

/**
 * Batches point writes into transactions. `write` resolves once the points are committed (so a caller with
 * at-least-once duties, like the rules outbox, acknowledges only durable data) and rejects on failure.
 * Committed points are announced to `onCommit` listeners (the live tail).
 */
export class BatchWriter {
  private queue: Pending[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private readonly listeners = new Set<(points: readonly Point[]) => void>();
  readonly stats: WriterStats = {
    written: 0,
    batches: 0,
    refused: 0,
    failed: 0,
    pending: 0,
    internalErrors: 0,
  };
  private readonly maxBatch: number;
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly onError: WriterOptions['onError'];
  private closed = false;

  constructor(
    private readonly store: TimeseriesStore,
    options: WriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 2000;
    this.flushMs = options.flushMs ?? 20;
    this.maxPending = options.maxPending ?? 200_000;
    this.onError = options.onError;
  }

  write(points: readonly Point[]): Promise<void> {
    if (points.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(E.TsWriterClosed());
    if (this.queued + points.length > this.maxPending) {
      this.stats.refused += points.length;
      return Promise.reject(E.TsQueueFull());
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ points, resolve, reject });
      this.queued += points.length;
      this.stats.pending = this.queued;
      if (this.queued >= this.maxBatch) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.flushMs);
    });
  }

  /** Subscribe to committed points; returns an unsubscribe. Listeners must not throw or block. */
  onCommit(listener: (points: readonly Point[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing ??= this.drain()
      .catch((err: unknown) => this.internalError(err, 'flush loop'))
      .finally(() => {
        this.flushing = null;
        if (this.queue.length > 0) this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let n = 0;
      while (this.queue.length > 0 && (n === 0 || n + this.queue[0]!.points.length <= this.maxBatch)) {
        const p = this.queue.shift()!;
        batch.push(p);
        n += p.points.length;
      }
      this.queued -= n;
      this.stats.pending = this.queued;
      const points = batch.flatMap((p) => p.points);
      try {
        await this.store.writePoints(points);
        this.stats.written += points.length;
        this.stats.batches++;
        for (const p of batch) p.resolve();
        for (const l of this.listeners) {
          try {
            l(points);
          } catch (err) {
            this.internalError(err, 'commit listener');
          }
        }
      } catch (err) {
        this.stats.failed += points.length;
        for (const p of batch) p.reject(err);
      }
    }
  }

  private internalError(err: unknown, what: string): void {
    this.stats.internalErrors++;
    this.onError?.(err, what);
  }

  /** Write everything queued so far. */
  async flush(): Promise<void> {
    this.kick();
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}
