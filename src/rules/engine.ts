/**
 * The rules engine, composed of its parts (each one file, each with its contract at the top):
 * - catalog.ts: rule CRUD, compile on change, one broker subscription per distinct FROM filter + Basic Ingest
 * - runtime.ts: the bounded evaluation queue (src/work) and SQL evaluation, off the MQTT path
 * - delivery.ts: first attempts of each action, at least once into durable sinks
 * - outbox.ts: the store-backed outbox, retries and backoff, per-action ordering
 * - error-action.ts: AWS's error payload to the rule's errorAction
 * - sinks/: one file per sink kind (republish, http, kafka, nats, postgres, timeseries)
 * - stats.ts: per-rule counters and Prometheus instruments (RuleLedger)
 */
import type { ChangeChannel } from '../events/index.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../json/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { Database } from '../store/index.js';
import { compileRule, RuleCatalog, type CompiledRule } from './catalog.js';
import { Delivery } from './delivery.js';
import type { TopicRuleDestinations } from './destinations.js';
import { RuleRuntime, type RuleTestResult, type RuntimeDeps } from './runtime.js';
import { DEFAULT_SQL_VERSION } from './sql/index.js';
import { Sinks } from './sinks/index.js';
import type { TimeseriesWriter } from './sinks/timeseries.js';
import { RuleLedger, RulesMetrics, type RuleStats, type TraceEntry } from './stats.js';
import { RuleStore } from './store.js';
import type { TopicRule, TopicRulePayload } from './types.js';

export type { RuleTestResult } from './runtime.js';

export interface RulesEngineOptions {
  readonly db: Database;
  readonly broker: Broker | null;
  readonly logger: Logger;
  readonly metrics?: Registry;
  readonly timeseries?: TimeseriesWriter | null;
  readonly accountId?: string;
  readonly region?: string;
  readonly natsServers?: string | null;
  readonly postgresUrl?: string | null;
  /** Messages waiting for evaluation; beyond it they are dropped with reason queue_full. */
  readonly queueSize?: number;
  /** Payload bytes waiting for evaluation (default 64 MiB); beyond it they are dropped with reason queue_full. */
  readonly queueBytes?: number;
  /** Deliveries in flight per action before new ones spill into the outbox. */
  readonly maxInFlightPerAction?: number;
  readonly outbox?: {
    readonly maxRows?: number;
    readonly maxAttempts?: number;
    readonly maxAgeMs?: number;
    readonly baseBackoffMs?: number;
    readonly maxBackoffMs?: number;
    readonly pollMs?: number;
  };
  /** At most one sampled trace per rule per this many ms (errors are always traced). */
  readonly traceIntervalMs?: number;
  /** Why an http action may not send to a URL (topic rule destinations, destinations.ts), or null. */
  readonly httpRefusal?: (url: string) => string | null;
  /** The topic rule destinations (started by startRules), exposed as `engine.destinations`. */
  readonly destinations?: TopicRuleDestinations;
  /**
   * Change events: a `rule` event is published after each committed rule write, and other processes'
   * events reload the rule they name (scale-out). Without it, only this engine's own writes apply.
   */
  readonly events?: ChangeChannel;
  /**
   * Write every durable delivery to the outbox before its first attempt (crash-safe once the batch is
   * written, at the cost of a store write per delivery). Off: the first attempt is made from memory and
   * only failures or overflow are written (a clean stop still writes whatever is in flight).
   */
  readonly writeAhead?: boolean;
  /**
   * JSON nesting a payload may have to be evaluated (`limits.maxJsonDepth`, default 64). A deeper payload
   * is a rule error: counted (evaluation_error), logged, and reported to the errorAction.
   */
  readonly maxJsonDepth?: number;
  /**
   * Usage metering (src/metering): called once per rule whose WHERE matched a message, with the message's
   * publisher, its payload bytes and the number of actions started. Synchronous, must not throw.
   */
  readonly onRuleMatched?: RuntimeDeps['onRuleMatched'];
}

/**
 * The rules engine: compiled rules indexed by their FROM filter, a bounded evaluation queue off the MQTT
 * path, and delivery with at-least-once semantics into durable sinks through a store-backed outbox.
 *
 * Contract: the broker's internal handler only enqueues (hot path: no await, no I/O). A delivery is
 * acknowledged only after its sink confirmed it; otherwise it is retried until it succeeds or is given up,
 * and every give-up is counted with a reason and reported to the rule's errorAction in AWS's shape.
 * @example const engine = await RulesEngine.start({ db, broker, logger }); await engine.createRule('r', payload);
 */
export class RulesEngine {
  readonly store: RuleStore;
  readonly sinks: Sinks;
  /** Topic rule destinations, when started by startRules (module.ts). */
  readonly destinations: TopicRuleDestinations | null;
  private readonly ledger: RuleLedger;
  private readonly catalog: RuleCatalog;
  private readonly runtime: RuleRuntime;
  private readonly delivery: Delivery;
  private closed = false;

  private constructor(options: RulesEngineOptions, store: RuleStore) {
    this.store = store;
    this.destinations = options.destinations ?? null;
    this.sinks = new Sinks({
      broker: options.broker,
      timeseries: options.timeseries ?? null,
      natsServers: options.natsServers ?? null,
      postgresUrl: options.postgresUrl ?? null,
      httpRefusal: options.httpRefusal,
    });
    this.ledger = new RuleLedger(
      new RulesMetrics(options.metrics, () => ({
        queue: this.runtime.depth,
        outbox: this.delivery.outbox.count,
      })),
      options.logger,
    );
    this.catalog = new RuleCatalog({
      store,
      broker: options.broker,
      logger: options.logger,
      events: options.events,
      region: options.region,
      accountId: options.accountId,
    });
    const maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    this.delivery = new Delivery({
      store,
      sinks: this.sinks,
      ledger: this.ledger,
      logger: options.logger,
      outbox: {
        maxRows: options.outbox?.maxRows ?? 1_000_000,
        maxAttempts: options.outbox?.maxAttempts ?? 50,
        maxAgeMs: options.outbox?.maxAgeMs ?? 24 * 3600_000,
        baseBackoffMs: options.outbox?.baseBackoffMs ?? 200,
        maxBackoffMs: options.outbox?.maxBackoffMs ?? 30_000,
        pollMs: options.outbox?.pollMs ?? 100,
      },
      writeAhead: options.writeAhead === true,
      maxInFlightPerAction: options.maxInFlightPerAction ?? 64,
      accountId: options.accountId,
      maxJsonDepth,
      sqlVersion: (rule) => this.catalog.get(rule)?.rule.awsIotSqlVersion ?? DEFAULT_SQL_VERSION,
    });
    this.runtime = new RuleRuntime({
      catalog: this.catalog,
      delivery: this.delivery,
      ledger: this.ledger,
      logger: options.logger,
      metrics: options.metrics,
      accountId: options.accountId,
      queueSize: options.queueSize ?? 10_000,
      queueBytes: options.queueBytes ?? 64 * 1024 * 1024,
      traceIntervalMs: options.traceIntervalMs ?? 250,
      maxJsonDepth,
      onRuleMatched: options.onRuleMatched,
    });
  }

  /** Open the rule store, learn the outbox backlog, compile every stored rule and subscribe. */
  static async start(options: RulesEngineOptions): Promise<RulesEngine> {
    const engine = new RulesEngine(options, await RuleStore.open(options.db));
    await engine.delivery.outbox.start();
    await engine.catalog.start(engine.runtime.enqueue);
    return engine;
  }

  // ------------------------------------------------------------------ rule management (catalog.ts)

  /** Validate and compile a payload; throws SqlParseException / InvalidRequestException like AWS. */
  static compile(name: string, payload: TopicRulePayload): CompiledRule {
    return compileRule(name, payload);
  }

  createRule(name: string, payload: TopicRulePayload): Promise<void> {
    return this.catalog.createRule(name, payload);
  }

  replaceRule(name: string, payload: TopicRulePayload): Promise<void> {
    return this.catalog.replaceRule(name, payload);
  }

  deleteRule(name: string): Promise<void> {
    return this.catalog.deleteRule(name);
  }

  setEnabled(name: string, enabled: boolean): Promise<void> {
    return this.catalog.setEnabled(name, enabled);
  }

  getRule(name: string): Promise<TopicRule> {
    return this.catalog.getRule(name);
  }

  ruleArn(name: string): string {
    return this.catalog.ruleArn(name);
  }

  /** Re-read the whole rule table (after change events may have been lost: `resync`). */
  refresh(): Promise<void> {
    return this.catalog.refresh();
  }

  // ------------------------------------------------------------------ inspection

  stats(rule: string): RuleStats & { outboxPending: number } {
    return { ...this.ledger.counter(rule).snapshot(), outboxPending: this.delivery.outbox.pendingFor(rule) };
  }

  traces(rule: string): readonly TraceEntry[] {
    return [...this.ledger.counter(rule).traces];
  }

  totals(): { queue: number; outbox: number; rules: number } {
    return { queue: this.runtime.depth, outbox: this.delivery.outbox.count, rules: this.catalog.size };
  }

  /** Evaluate a rule on a sample message and render each action's request, without delivering anything. */
  test(
    name: string,
    sample: { topic?: string; payload: Buffer; clientId?: string; principal?: string },
  ): Promise<RuleTestResult> {
    return this.runtime.test(name, sample);
  }

  /** Wait until the queue is empty, no delivery is in flight and the spill buffer is written. */
  async idle(): Promise<void> {
    for (;;) {
      await this.runtime.idle();
      if (this.delivery.quiet && this.runtime.depth === 0) return;
      await this.delivery.settleAll();
    }
  }

  /**
   * Stop: unsubscribe, evaluate what is queued, let in-flight deliveries settle (failures land in the
   * outbox), write the spill buffer, close sink connections. Nothing acknowledged is lost on a clean stop.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.catalog.close();
    await this.idle();
    await this.runtime.close();
    await this.delivery.outbox.close();
    await this.sinks.close();
  }
}
