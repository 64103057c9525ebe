import { Counter, Gauge, Histogram, type Logger, type Registry } from '../observability/index.js';

/** Why a delivery or a message was dropped. Every drop is counted with one of these. */
export type DropReason =
  | 'queue_full'
  | 'outbox_full'
  | 'outbox_error'
  | 'retries_exhausted'
  | 'permanent_failure'
  | 'evaluation_error'
  | 'republish_loop'
  | 'shutdown'
  /** A bug caught by a last line of defence (a throw in a callback or timer), logged with its stack. */
  | 'internal_error';

/** Per-rule counters kept in memory for the API and CLI (Prometheus has the same under thingstead_rule_*). */
export interface RuleStats {
  matched: number;
  actionOk: number;
  actionFailed: number;
  /** Deliveries that went to the outbox (sink failing or too many in flight). */
  queued: number;
  dropped: Partial<Record<DropReason, number>>;
  errorActions: number;
  /** Latency from message receipt to the action's success, ms: recent samples for percentiles. */
  latencyMs: { p50: number | null; p99: number | null; samples: number };
}

/** One sampled match: what came in, what SELECT produced, what each action got and how it went. */
export interface TraceEntry {
  readonly at: number;
  readonly topic: string;
  readonly clientId: string;
  readonly payload: string;
  readonly output: string;
  readonly actions: Array<{
    kind: string;
    resource: string;
    outcome: 'pending' | 'ok' | 'queued' | 'failed';
    error?: string;
    ms?: number;
  }>;
}

const RESERVOIR = 512;

export class RuleCounters {
  matched = 0;
  actionOk = 0;
  actionFailed = 0;
  queued = 0;
  errorActions = 0;
  readonly dropped: Partial<Record<DropReason, number>> = {};
  private readonly latencies: number[] = [];
  private latencyIdx = 0;
  readonly traces: TraceEntry[] = [];
  lastTraceAt = 0;

  observeLatency(ms: number): void {
    if (this.latencies.length < RESERVOIR) this.latencies.push(ms);
    else this.latencies[this.latencyIdx++ % RESERVOIR] = ms;
  }

  snapshot(): RuleStats {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null;
    return {
      matched: this.matched,
      actionOk: this.actionOk,
      actionFailed: this.actionFailed,
      queued: this.queued,
      dropped: { ...this.dropped },
      errorActions: this.errorActions,
      latencyMs: { p50: q(0.5), p99: q(0.99), samples: sorted.length },
    };
  }
}

/** Prometheus instruments for the rules engine, registered on the platform's registry. */
export class RulesMetrics {
  readonly matched: Counter<'rule'>;
  readonly actions: Counter<'rule' | 'action' | 'outcome'>;
  readonly dropped: Counter<'rule' | 'reason'>;
  readonly latency: Histogram<'rule'>;
  private readonly children = new Map<string, { inc(): void } | { observe(v: number): void }>();

  /** Hot path: label children are cached per label set (prom-client hashes labels on every call otherwise). */
  countMatched(rule: string): void {
    this.child(`m\u0000${rule}`, () => this.matched.labels(rule)).inc();
  }
  countAction(rule: string, action: string, outcome: 'ok' | 'failed' | 'queued'): void {
    this.child(`a\u0000${rule}\u0000${action}\u0000${outcome}`, () =>
      this.actions.labels(rule, action, outcome),
    ).inc();
  }
  observeLatency(rule: string, seconds: number): void {
    const key = `l\u0000${rule}`;
    let h = this.children.get(key) as { observe(v: number): void } | undefined;
    if (!h) this.children.set(key, (h = this.latency.labels(rule)));
    h.observe(seconds);
  }
  private child(key: string, make: () => { inc(): void }): { inc(): void } {
    let c = this.children.get(key) as { inc(): void } | undefined;
    if (!c) this.children.set(key, (c = make()));
    return c;
  }

  constructor(registry: Registry | undefined, sample: () => { queue: number; outbox: number }) {
    const registers = registry ? [registry] : [];
    this.matched = new Counter({
      name: 'thingstead_rule_matched_total',
      help: 'Messages a rule matched (WHERE true)',
      labelNames: ['rule'],
      registers,
    });
    this.actions = new Counter({
      name: 'thingstead_rule_action_total',
      help: 'Rule action deliveries by outcome (ok, failed, queued to the outbox)',
      labelNames: ['rule', 'action', 'outcome'],
      registers,
    });
    this.dropped = new Counter({
      name: 'thingstead_rule_dropped_total',
      help: 'Messages or deliveries dropped, by reason',
      labelNames: ['rule', 'reason'],
      registers,
    });
    this.latency = new Histogram({
      name: 'thingstead_rule_latency_seconds',
      help: 'Message receipt to action success',
      labelNames: ['rule'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    });
    new Gauge({
      name: 'thingstead_rules_queue_depth',
      help: 'Messages waiting for rule evaluation',
      registers,
      collect() {
        this.set(sample().queue);
      },
    });
    new Gauge({
      name: 'thingstead_rules_outbox_pending',
      help: 'Deliveries waiting in the outbox',
      registers,
      collect() {
        this.set(sample().outbox);
      },
    });
  }
}

/**
 * Per-rule accounting shared by the engine's parts (catalog, runtime, delivery, outbox): the in-memory
 * counters the API shows and the Prometheus instruments, kept in step.
 */
export class RuleLedger {
  private readonly counters = new Map<string, RuleCounters>();

  constructor(
    readonly metrics: RulesMetrics,
    private readonly logger: Logger,
  ) {}

  counter(rule: string): RuleCounters {
    let c = this.counters.get(rule);
    if (!c) this.counters.set(rule, (c = new RuleCounters()));
    return c;
  }

  drop(rule: string, reason: DropReason): void {
    const c = this.counter(rule);
    c.dropped[reason] = (c.dropped[reason] ?? 0) + 1;
    this.metrics.dropped.inc({ rule, reason });
  }

  /** A delivery succeeded: count it and observe receipt-to-success latency. */
  ok(rule: string, kind: string, receivedAt: number): void {
    const c = this.counter(rule);
    c.actionOk++;
    const ms = Date.now() - receivedAt;
    c.observeLatency(ms);
    this.metrics.countAction(rule, kind, 'ok');
    this.metrics.observeLatency(rule, ms / 1000);
  }

  /**
   * Last line of defence for work running off the caller's stack (sink callbacks, timers): a throw there
   * is a bug, counted (internal_error) and logged, never an unhandled rejection that ends the process.
   */
  backgroundFailed(rule: string, what: string, err: unknown): void {
    this.drop(rule, 'internal_error');
    this.logger.error({ err, rule }, `rules engine: ${what} failed unexpectedly`);
  }
}
