/**
 * The delivery outbox: durable deliveries that failed, overflowed or were written ahead wait in the store
 * (RuleStore's outbox table) and are retried with backoff until they succeed or are given up.
 *
 * Ordering rules (kept here, in one place):
 * - Per action (`rule#index`), rows waiting in the outbox hold back new deliveries: while `pending > 0`, a
 *   new delivery of that action is written behind them instead of being attempted (delivery.ts asks).
 * - Spilled rows are collected and written in one transaction a few ms later (`flushSpill`).
 * - A retry pass probes each action with its oldest row first: a dead sink is not hammered; when the probe
 *   succeeds the rest go out and every waiting row of that action becomes due at once (`wake`).
 */
import type { Logger } from '../observability/index.js';
import { ActionError, type ActionRequest } from './actions.js';
import type { Sinks } from './sinks/index.js';
import type { DropReason, RuleLedger } from './stats.js';
import type { NewOutboxRow, Origin, OutboxRow, RuleStore } from './store.js';
import type { ActionConfig } from './types.js';

/** Per action: deliveries in flight, rows waiting in the outbox, and its backoff. */
export interface ActionState {
  inFlight: number;
  /** Rows of this action waiting in the outbox: new deliveries queue behind them to keep order. */
  pending: number;
  blockedUntil: number;
  backoffMs: number;
}

export interface OutboxOptions {
  readonly maxRows: number;
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly pollMs: number;
}

export interface OutboxDeps {
  readonly store: RuleStore;
  readonly sinks: Sinks;
  readonly ledger: RuleLedger;
  readonly logger: Logger;
  readonly options: OutboxOptions;
  /** Write-ahead rows are attempted as soon as they are written, without waiting for the next poll. */
  readonly writeAhead: boolean;
  /** A row is given up (outbox full, write failed, retries exhausted, permanent failure). */
  readonly giveUp: (
    rule: string,
    action: ActionConfig,
    request: ActionRequest,
    message: string,
    reason: DropReason,
    origin: Origin,
    errorAction: ActionConfig | null,
  ) => void;
}

export class Outbox {
  private readonly states = new Map<string, ActionState>();
  private spill: NewOutboxRow[] = [];
  private spillTimer: NodeJS.Timeout | null = null;
  private spillFlush: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryRun: Promise<void> | null = null;
  private closed = false;
  /** Rows in the outbox (written or spilled), for the bound and the gauge. */
  count = 0;

  constructor(private readonly d: OutboxDeps) {}

  /** Learn what the store already holds, and start the retry loop. */
  async start(): Promise<void> {
    for (const [key, n] of await this.d.store.pendingByAction()) {
      this.state(key).pending = n;
      this.count += n;
    }
    this.retryTimer = setInterval(() => this.retryTick(), this.d.options.pollMs);
    this.retryTimer.unref();
  }

  state(key: string): ActionState {
    let s = this.states.get(key);
    if (!s) this.states.set(key, (s = { inFlight: 0, pending: 0, blockedUntil: 0, backoffMs: 0 }));
    return s;
  }

  /** Rows of one rule waiting in the outbox. */
  pendingFor(rule: string): number {
    let n = 0;
    for (const [k, s] of this.states) if (k.startsWith(`${rule}#`)) n += s.pending;
    return n;
  }

  /** Nothing spilled and not yet written. */
  get flushed(): boolean {
    return this.spill.length === 0 && !this.spillFlush;
  }

  backoff(state: ActionState, attempts: number): number {
    const o = this.d.options;
    const base = Math.min(o.maxBackoffMs, o.baseBackoffMs * 2 ** Math.min(attempts - 1, 20));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.backoffMs = delay;
    state.blockedUntil = Date.now() + delay;
    return delay;
  }

  /** Put a delivery in the outbox (spilled now, written within a few ms), or give it up when full. */
  add(
    rule: string,
    key: string,
    action: ActionConfig,
    request: ActionRequest,
    origin: Origin,
    errorAction: ActionConfig | null,
    attempts: number,
    nextAt: number,
    lastError: string | null,
  ): void {
    if (this.count >= this.d.options.maxRows) {
      this.d.giveUp(rule, action, request, lastError ?? 'outbox full', 'outbox_full', origin, errorAction);
      return;
    }
    const c = this.d.ledger.counter(rule);
    c.queued++;
    this.d.ledger.metrics.countAction(rule, Object.keys(action)[0]!, 'queued');
    this.state(key).pending++;
    this.count++;
    this.spill.push({
      ruleName: rule,
      actionKey: key,
      action: action,
      request,
      origin,
      errorAction: errorAction,
      attempts,
      nextAt,
      createdAt: Date.now(),
      lastError,
    });
    this.spillTimer ??= setTimeout(
      () =>
        void this.flushSpill().catch((err: unknown) =>
          this.d.ledger.backgroundFailed(rule, 'outbox write', err),
        ),
      5,
    );
  }

  /** Write spilled deliveries to the outbox in one transaction. */
  async flushSpill(): Promise<void> {
    if (this.spillTimer) clearTimeout(this.spillTimer);
    this.spillTimer = null;
    while (this.spillFlush) await this.spillFlush;
    if (this.spill.length === 0) return;
    const batch = this.spill;
    this.spill = [];
    this.spillFlush = this.d.store.enqueue(batch).then(
      () => {
        // Write-ahead rows are due now: attempt them without waiting for the next poll.
        if (this.d.writeAhead) setImmediate(() => this.retryTick());
      },
      (err: unknown) => {
        this.d.logger.error({ err, rows: batch.length }, 'outbox write failed; deliveries dropped');
        for (const row of batch) {
          this.count--;
          this.state(row.actionKey).pending--;
          this.d.giveUp(
            row.ruleName,
            row.action,
            row.request as ActionRequest,
            'outbox write failed',
            'outbox_error',
            row.origin,
            row.errorAction,
          );
        }
      },
    );
    try {
      await this.spillFlush;
    } finally {
      this.spillFlush = null;
    }
  }

  /** Stop retrying, wait for a running pass, write what is spilled. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    await this.retryRun;
    await this.flushSpill();
  }

  private retryTick(): void {
    if (this.retryRun || this.closed || this.count === 0) return;
    this.retryRun = this.retryDue()
      .catch((err: unknown) => this.d.logger.warn({ err }, 'outbox retry pass failed'))
      .finally(() => (this.retryRun = null));
  }

  /**
   * One pass over due outbox rows. Per action, the oldest row probes the sink first: if it fails, the
   * action's other rows wait for the next backoff without being attempted (a dead sink is not hammered);
   * if it succeeds, the rest go out and every waiting row of that action becomes due at once.
   */
  private async retryDue(): Promise<void> {
    await this.flushSpill();
    const now = Date.now();
    const rows = await this.d.store.claimDue(now, 500, 60_000);
    const byAction = new Map<string, OutboxRow[]>();
    for (const r of rows) {
      const list = byAction.get(r.actionKey);
      if (list) list.push(r);
      else byAction.set(r.actionKey, [r]);
    }
    await Promise.all([...byAction.entries()].map(([key, list]) => this.retryAction(key, list)));
  }

  private async retryAction(key: string, rows: OutboxRow[]): Promise<void> {
    const state = this.state(key);
    let i = 0;
    let woke = false;
    while (i < rows.length) {
      const chunk = i === 0 ? [rows[0]!] : rows.slice(i, i + 32);
      const results = await Promise.all(chunk.map((row) => this.retryOne(row)));
      i += chunk.length;
      if (results.every(Boolean)) {
        if (!woke) {
          woke = true;
          state.backoffMs = 0;
          state.blockedUntil = 0;
          await this.d.store.wake(key, Date.now());
        }
        continue;
      }
      // The sink failed again: the untried rows wait with the action's new backoff.
      const nextAt = state.blockedUntil || Date.now() + this.d.options.baseBackoffMs;
      for (const row of rows.slice(i))
        await this.d.store.reschedule(row.id, row.attempts, nextAt, row.lastError ?? '');
      return;
    }
  }

  /** Returns true when delivered (or given up for good), false when it should wait. */
  private async retryOne(row: OutboxRow): Promise<boolean> {
    const state = this.state(row.actionKey);
    const action = row.action as ActionConfig;
    const kind = Object.keys(action)[0]!;
    const o = this.d.options;
    try {
      await this.d.sinks.execute(action, row.request as ActionRequest);
      await this.d.store.complete(row.id);
      this.count--;
      state.pending--;
      this.d.ledger.ok(row.ruleName, kind, row.origin.receivedAt);
      return true;
    } catch (err) {
      const e = err instanceof ActionError ? err : new ActionError((err as Error).message, true);
      const attempts = row.attempts + 1;
      this.d.ledger.counter(row.ruleName).actionFailed++;
      this.d.ledger.metrics.countAction(row.ruleName, kind, 'failed');
      const expired = attempts >= o.maxAttempts || Date.now() - row.createdAt > o.maxAgeMs;
      if (!e.retryable || expired) {
        await this.d.store.complete(row.id);
        this.count--;
        state.pending--;
        this.d.giveUp(
          row.ruleName,
          action,
          row.request as ActionRequest,
          e.message,
          e.retryable ? 'retries_exhausted' : 'permanent_failure',
          row.origin,
          row.errorAction,
        );
        return !e.retryable;
      }
      const delay = this.backoff(state, attempts);
      await this.d.store.reschedule(row.id, attempts, Date.now() + delay, e.message);
      return false;
    }
  }
}
