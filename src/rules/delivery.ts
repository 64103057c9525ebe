/**
 * Delivery of one matched message's actions, at least once into durable sinks.
 *
 * Contract: a delivery is acknowledged (removed from memory or the outbox) only after its sink confirmed
 * it; otherwise it is retried through the outbox (outbox.ts) until it succeeds or is given up, and every
 * give-up is counted with a reason and reported to the rule's errorAction (error-action.ts). Republish is
 * in-process: no outbox, a failure is final. Per action, at most `maxInFlightPerAction` first attempts run
 * at once; beyond it, and while older rows of the action wait in the outbox, new deliveries are written
 * behind them (order kept, memory bounded).
 */
import type { Logger } from '../observability/index.js';
import {
  ActionError,
  resourceOf,
  type ActionInput,
  type ActionRequest,
  type CompiledAction,
} from './actions.js';
import type { LoadedRule } from './catalog.js';
import { ErrorActions, withPayload, type FailureGroup } from './error-action.js';
import { Outbox, type OutboxOptions } from './outbox.js';
import type { Sinks } from './sinks/index.js';
import type { RuleLedger, TraceEntry } from './stats.js';
import type { Origin, RuleStore } from './store.js';

export interface DeliveryDeps {
  readonly store: RuleStore;
  readonly sinks: Sinks;
  readonly ledger: RuleLedger;
  readonly logger: Logger;
  readonly outbox: OutboxOptions;
  readonly writeAhead: boolean;
  readonly maxInFlightPerAction: number;
  readonly accountId: string | undefined;
  readonly maxJsonDepth: number;
  readonly sqlVersion: (rule: string) => string;
}

export class Delivery {
  readonly outbox: Outbox;
  readonly errors: ErrorActions;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly d: DeliveryDeps) {
    // The outbox gives rows up through the errorAction; a failing durable errorAction retries through
    // the outbox (without a further errorAction). Both belong to this delivery, wired here once.
    this.outbox = new Outbox({
      store: d.store,
      sinks: d.sinks,
      ledger: d.ledger,
      logger: d.logger,
      options: d.outbox,
      writeAhead: d.writeAhead,
      giveUp: (...args) => this.errors.giveUp(...args),
    });
    this.errors = new ErrorActions({
      ledger: d.ledger,
      sinks: d.sinks,
      logger: d.logger,
      accountId: d.accountId,
      maxJsonDepth: d.maxJsonDepth,
      sqlVersion: d.sqlVersion,
      retryLater: (rule, config, request, origin, error) =>
        this.outbox.add(
          rule,
          `${rule}#error`,
          config,
          request,
          origin,
          null,
          1,
          Date.now() + d.outbox.baseBackoffMs,
          error,
        ),
    });
  }

  /** Deliver action `index` of a loaded rule for one matched message. Never throws. */
  deliver(
    loaded: LoadedRule,
    index: number,
    action: CompiledAction,
    input: ActionInput,
    origin: Origin,
    trace: TraceEntry | null,
    depth: number,
    group: FailureGroup | null,
  ): void {
    const name = loaded.rule.ruleName;
    const settle = () => this.errors.settle(name, group);
    const ledger = this.d.ledger;
    const c = ledger.counter(name);
    /** A final failure of this action: to the rule's errorAction (AWS's error payload), then settle. */
    const giveUp = (request: ActionRequest | null, message: string) => {
      this.errors.giveUp(
        name,
        action.config,
        request,
        message,
        'permanent_failure',
        withPayload(origin, input),
        loaded.errorAction?.config ?? null,
        group,
      );
      settle();
    };
    let request: ActionRequest;
    try {
      request = action.prepare(input);
    } catch (err) {
      const message = (err as Error).message;
      trace?.actions.push({
        kind: action.kind,
        resource: resourceOf(action.config, null),
        outcome: 'failed',
        error: message,
      });
      giveUp(null, message);
      return;
    }
    const t = trace
      ? {
          kind: action.kind,
          resource: resourceOf(action.config, request),
          outcome: 'pending' as TraceEntry['actions'][number]['outcome'],
          error: undefined as string | undefined,
          ms: undefined as number | undefined,
        }
      : null;
    if (trace && t) trace.actions.push(t);
    if (!action.durable) {
      // In-process (republish): no outbox; a failure is final.
      void this.d.sinks
        .execute(action.config, request, depth)
        .then(
          () => {
            ledger.ok(name, action.kind, origin.receivedAt);
            if (t) t.outcome = 'ok';
            settle();
          },
          (err: unknown) => {
            const message = (err as Error).message;
            if (t) Object.assign(t, { outcome: 'failed', error: message });
            c.actionFailed++;
            giveUp(request, message);
          },
        )
        .catch((err: unknown) => ledger.backgroundFailed(name, 'republish delivery', err));
      return;
    }
    const key = `${name}#${index}`;
    const state = this.outbox.state(key);
    const errorAction = loaded.errorAction?.config ?? null;
    // The time-series writer is itself a bounded batching queue; other sinks get maxInFlightPerAction.
    const max = this.d.maxInFlightPerAction;
    const limit = action.kind === 'timeseries' ? Math.max(max, 10_000) : max;
    if (this.d.writeAhead || state.pending > 0 || state.inFlight >= limit) {
      // Keep order behind waiting rows; spill instead of growing memory.
      if (t) t.outcome = 'queued';
      this.outbox.add(
        name,
        key,
        action.config,
        request,
        withPayload(origin, input),
        errorAction,
        0,
        Math.max(Date.now(), state.blockedUntil),
        null,
      );
      settle();
      return;
    }
    state.inFlight++;
    const started = Date.now();
    const p = this.d.sinks
      .execute(action.config, request)
      .then(
        () => {
          ledger.ok(name, action.kind, origin.receivedAt);
          if (t) Object.assign(t, { outcome: 'ok', ms: Date.now() - started });
          settle();
        },
        (err: unknown) => {
          const e =
            err instanceof ActionError ? err : new ActionError(String((err as Error)?.message ?? err), true);
          if (t) Object.assign(t, { outcome: e.retryable ? 'queued' : 'failed', error: e.message });
          c.actionFailed++;
          ledger.metrics.countAction(name, action.kind, 'failed');
          if (!e.retryable) {
            giveUp(request, e.message);
            return;
          }
          const delay = this.outbox.backoff(state, 1);
          this.outbox.add(
            name,
            key,
            action.config,
            request,
            withPayload(origin, input),
            errorAction,
            1,
            Date.now() + delay,
            e.message,
          );
          settle();
        },
      )
      .catch((err: unknown) => ledger.backgroundFailed(name, 'delivery', err))
      .finally(() => {
        state.inFlight--;
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  /** Nothing in flight (first attempts, errorActions) and nothing spilled unwritten. */
  get quiet(): boolean {
    return this.inFlight.size === 0 && this.errors.pending === 0 && this.outbox.flushed;
  }

  /** Let what is in flight settle (failures land in the outbox), then write the spill buffer. */
  async settleAll(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.errors.settled();
    await this.outbox.flushSpill();
  }
}
