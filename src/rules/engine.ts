import { ThingsteadError } from '../errors/index.js';
import type { ChangeChannel } from '../events/index.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../json/index.js';
import type { Broker, Message, Publisher } from '../mqtt/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { Database } from '../store/index.js';
import type { Point } from '../timeseries/index.js';
import { WorkQueue } from '../work/index.js';
import {
  ActionError,
  AWS_ACTION_NAMES,
  compileAction,
  outputBytes,
  resourceOf,
  type ActionInput,
  type ActionRequest,
  type CompiledAction,
} from './actions.js';
import {
  compileSql,
  DEFAULT_SQL_VERSION,
  parsePayload,
  toJson,
  type CompiledSql,
  type ParsedPayload,
  type SqlContext,
} from './sql/index.js';
import { REPUBLISH_DEPTH, Sinks } from './sinks.js';
import { RuleCounters, RulesMetrics, type DropReason, type RuleStats, type TraceEntry } from './stats.js';
import { RuleStore, type NewOutboxRow, type Origin, type OutboxRow } from './store.js';
import { RULE_NAME_PATTERN, type ActionConfig, type TopicRule, type TopicRulePayload } from './types.js';

export interface RulesEngineOptions {
  readonly db: Database;
  readonly broker: Broker | null;
  readonly logger: Logger;
  readonly metrics?: Registry;
  readonly timeseries?: { write(points: readonly Point[]): Promise<void> } | null;
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
}

interface LoadedRule {
  readonly rule: TopicRule;
  readonly sql: CompiledSql;
  readonly actions: readonly CompiledAction[];
  readonly errorAction: CompiledAction | null;
}

interface QueueItem {
  readonly message: Message;
  readonly publisher: Publisher | null;
  /** Rule names to evaluate (one subscription's rules), or the Basic Ingest rule. */
  readonly rules: readonly string[];
  readonly basicIngest: boolean;
  readonly at: number;
}

/**
 * The first attempts of one message's actions for one rule: permanent failures among them are reported to
 * errorAction together, in one error payload (AWS: one message per rule and message, listing all failures).
 */
interface FailureGroup {
  pending: number;
  readonly failures: Array<{ failedAction: string; failedResource: string; errorMessage: string }>;
  origin: Origin | null;
  readonly errorAction: ActionConfig;
}

interface ActionState {
  inFlight: number;
  /** Rows of this action waiting in the outbox: new deliveries queue behind them to keep order. */
  pending: number;
  blockedUntil: number;
  backoffMs: number;
}

/** What `rules test` shows: SELECT's output and each action's rendered request, without delivering. */
export interface RuleTestResult {
  readonly matched: boolean;
  readonly output?: string;
  readonly outputBase64?: string;
  readonly actions: Array<{ kind: string; resource: string; request?: ActionRequest; error?: string }>;
}

const MAX_ACTIONS = 10;
/** Republish hops after which a message is dropped (reason republish_loop): a rule feeding itself stops. */
const MAX_REPUBLISH_DEPTH = 8;
const BASIC_INGEST = /^\$aws\/rules\/([^/]+)(\/|$)/;

/**
 * The rules engine: compiled rules indexed by their FROM filter (one broker subscription per distinct
 * filter, plus Basic Ingest), a bounded evaluation queue off the MQTT path, and delivery with
 * at-least-once semantics into durable sinks through a store-backed outbox with retries and backoff.
 *
 * Contract: the broker's internal handler only enqueues (hot path: no await, no I/O). A delivery is
 * acknowledged (removed from memory or the outbox) only after its sink confirmed it; otherwise it is
 * retried until it succeeds or is given up, and every give-up is counted with a reason and reported to the
 * rule's errorAction in AWS's error payload shape.
 *
 * Why one file past 800 lines: the delivery state (per-action in-flight, outbox backlog, backoff, error
 * groups) is one state machine whose ordering rules (new deliveries queue behind waiting rows, a sink's
 * recovery wakes its rows) are easier to keep true in one place.
 */
export class RulesEngine {
  readonly store: RuleStore;
  private readonly rules = new Map<string, LoadedRule>();
  private readonly subscriptions = new Map<string, { rules: Set<string>; unsubscribe: () => void }>();
  private basicIngestUnsub: (() => void) | null = null;
  private readonly counters = new Map<string, RuleCounters>();
  private readonly actionStates = new Map<string, ActionState>();
  /** The evaluation queue (src/work): bounded by queueSize and queueBytes, drained in time slices. */
  private readonly queue: WorkQueue<QueueItem>;
  private spill: NewOutboxRow[] = [];
  private spillTimer: NodeJS.Timeout | null = null;
  private spillFlush: Promise<void> | null = null;
  private outboxCount = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryRun: Promise<void> | null = null;
  private unsubscribeEvents: (() => void) | null = null;
  private inFlight = new Set<Promise<unknown>>();
  private closed = false;
  private traceSeq = 0;
  readonly sinks: Sinks;
  private readonly metrics: RulesMetrics;
  private readonly o: Required<NonNullable<RulesEngineOptions['outbox']>>;
  private readonly maxInFlight: number;
  private readonly traceIntervalMs: number;
  private readonly maxJsonDepth: number;

  private constructor(
    private readonly options: RulesEngineOptions,
    store: RuleStore,
  ) {
    this.store = store;
    this.sinks = new Sinks({
      broker: options.broker,
      timeseries: options.timeseries ?? null,
      natsServers: options.natsServers ?? null,
      postgresUrl: options.postgresUrl ?? null,
    });
    this.o = {
      maxRows: options.outbox?.maxRows ?? 1_000_000,
      maxAttempts: options.outbox?.maxAttempts ?? 50,
      maxAgeMs: options.outbox?.maxAgeMs ?? 24 * 3600_000,
      baseBackoffMs: options.outbox?.baseBackoffMs ?? 200,
      maxBackoffMs: options.outbox?.maxBackoffMs ?? 30_000,
      pollMs: options.outbox?.pollMs ?? 100,
    };
    this.queue = new WorkQueue<QueueItem>({
      name: 'rules',
      maxItems: options.queueSize ?? 10_000,
      maxBytes: options.queueBytes ?? 64 * 1024 * 1024,
      sizeOf: (item) => item.message.payload.length + item.message.topic.length + 64,
      logger: options.logger,
      metrics: options.metrics,
      handle: (item) => this.process(item),
      // Last line of defence: one message must never stop the drain or end the process (the queue logs it).
      onError: (item) => {
        for (const name of item.rules) this.drop(name, 'evaluation_error');
      },
      onDrop: (item, reason) => {
        for (const name of item.rules) this.drop(name, reason);
      },
    });
    this.maxInFlight = options.maxInFlightPerAction ?? 64;
    this.traceIntervalMs = options.traceIntervalMs ?? 250;
    this.maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    this.metrics = new RulesMetrics(options.metrics, () => ({
      queue: this.queue.depth,
      outbox: this.outboxCount,
    }));
  }

  /** Open the rule store, compile every stored rule, subscribe, and start the outbox retry loop. */
  static async start(options: RulesEngineOptions): Promise<RulesEngine> {
    const engine = new RulesEngine(options, await RuleStore.open(options.db));
    for (const rule of await engine.store.list()) engine.load(rule);
    for (const [key, n] of await engine.store.pendingByAction()) {
      engine.state(key).pending = n;
      engine.outboxCount += n;
    }
    if (options.broker)
      engine.basicIngestUnsub = options.broker.subscribeInternal('$aws/rules/#', (m, p) =>
        engine.onBasicIngest(m, p),
      );
    engine.retryTimer = setInterval(() => engine.retryTick(), engine.o.pollMs);
    engine.retryTimer.unref();
    engine.unsubscribeEvents =
      options.events?.subscribe(['rule'], (e, origin) => {
        if (origin !== 'remote' || engine.closed) return undefined;
        return (e.kind === 'rule' ? engine.reloadRule(e.name) : engine.refresh()).catch((err: unknown) =>
          engine.options.logger.warn({ err }, 'cannot apply a rule change from another node'),
        );
      }) ?? null;
    return engine;
  }

  // ------------------------------------------------------------------ rule management

  /** Validate and compile a payload; throws SqlParseException / InvalidRequestException like AWS. */
  static compile(name: string, payload: TopicRulePayload): Omit<LoadedRule, 'rule'> {
    if (!RULE_NAME_PATTERN.test(name) || name.length > 128)
      throw new ThingsteadError(
        'InvalidRequest',
        `1 validation error detected: Value '${name}' at 'ruleName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$`,
      );
    if (typeof payload.sql !== 'string' || payload.sql.length === 0)
      throw new ThingsteadError(
        'InvalidRequest',
        "1 validation error detected: Value null at 'topicRulePayload.sql' failed to satisfy constraint: Member must not be null",
      );
    if (!Array.isArray(payload.actions))
      throw new ThingsteadError(
        'InvalidRequest',
        "1 validation error detected: Value null at 'topicRulePayload.actions' failed to satisfy constraint: Member must not be null",
      );
    if (payload.actions.length > MAX_ACTIONS)
      throw new ThingsteadError('InvalidRequest', `A rule can have at most ${MAX_ACTIONS} actions`);
    const version = payload.awsIotSqlVersion ?? DEFAULT_SQL_VERSION;
    const sql = compileSql(payload.sql, version);
    const actions = payload.actions.map((a, i) => compileAction(a, version, `actions[${i}]`));
    const errorAction = payload.errorAction
      ? compileAction(payload.errorAction, version, 'errorAction')
      : null;
    return { sql, actions, errorAction };
  }

  async createRule(name: string, payload: TopicRulePayload): Promise<void> {
    const compiled = RulesEngine.compile(name, payload);
    const stored = normalize(payload);
    if (!(await this.store.create(name, stored, compiled.sql.topicFilter, Date.now())))
      throw new ThingsteadError('ResourceAlreadyExists', `Rule ${name} already exists`, {
        resourceId: name,
        resourceArn: this.ruleArn(name),
      });
    const rule = await this.store.get(name);
    if (rule) this.install(rule, compiled);
    await this.changed(name);
  }

  async replaceRule(name: string, payload: TopicRulePayload): Promise<void> {
    const compiled = RulesEngine.compile(name, payload);
    if (!(await this.store.replace(name, normalize(payload), compiled.sql.topicFilter, Date.now())))
      throw new ThingsteadError('ResourceNotFound', `Rule ${name} does not exist`);
    const rule = await this.store.get(name);
    if (rule) this.install(rule, compiled);
    await this.changed(name);
  }

  async deleteRule(name: string): Promise<void> {
    // AWS answers success (or UnauthorizedException) for a missing rule; we stay idempotent too.
    if (await this.store.delete(name)) await this.changed(name);
    this.unload(name);
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const rule = await this.store.setDisabled(name, !enabled, Date.now());
    if (!rule) throw new ThingsteadError('ResourceNotFound', `Rule ${name} does not exist`);
    this.load(rule);
    await this.changed(name);
  }

  /** After a committed rule write: tell the other nodes (they reload that one rule). */
  private async changed(name: string): Promise<void> {
    await this.options.events?.publish({ kind: 'rule', name });
  }

  /** Re-read one rule (another node changed it). */
  private async reloadRule(name: string): Promise<void> {
    const rule = await this.store.get(name);
    if (!rule) this.unload(name);
    else if (this.rules.get(name)?.rule.updatedAt !== rule.updatedAt) this.load(rule);
  }

  async getRule(name: string): Promise<TopicRule> {
    const rule = await this.store.get(name);
    if (!rule) throw new ThingsteadError('Unauthorized', `Rule ${name} does not exist or is not authorized`);
    return rule;
  }

  ruleArn(name: string): string {
    return `arn:aws:iot:${this.options.region ?? 'us-east-1'}:${this.options.accountId ?? '000000000000'}:rule/${name}`;
  }

  /** Re-read the whole rule table (after change events may have been lost: `resync`). */
  async refresh(): Promise<void> {
    const rules = await this.store.list();
    const names = new Set(rules.map((r) => r.ruleName));
    for (const name of [...this.rules.keys()]) if (!names.has(name)) this.unload(name);
    for (const rule of rules)
      if (this.rules.get(rule.ruleName)?.rule.updatedAt !== rule.updatedAt) this.load(rule);
  }

  private load(rule: TopicRule): void {
    try {
      this.install(rule, RulesEngine.compile(rule.ruleName, rule));
    } catch (err) {
      this.options.logger.error({ err, rule: rule.ruleName }, 'stored rule does not compile; skipped');
    }
  }

  private install(rule: TopicRule, compiled: Omit<LoadedRule, 'rule'>): void {
    this.unload(rule.ruleName);
    this.rules.set(rule.ruleName, { rule, ...compiled });
    if (rule.ruleDisabled || !compiled.sql.topicFilter || !this.options.broker) return;
    const filter = compiled.sql.topicFilter;
    let sub = this.subscriptions.get(filter);
    if (!sub) {
      const names = new Set<string>();
      const unsubscribe = this.options.broker.subscribeInternal(filter, (m, p) =>
        this.onMessage(m, p, names),
      );
      sub = { rules: names, unsubscribe };
      this.subscriptions.set(filter, sub);
    }
    sub.rules.add(rule.ruleName);
  }

  private unload(name: string): void {
    const loaded = this.rules.get(name);
    if (!loaded) return;
    this.rules.delete(name);
    const filter = loaded.sql.topicFilter;
    const sub = filter ? this.subscriptions.get(filter) : undefined;
    if (sub?.rules.delete(name) && sub.rules.size === 0) {
      sub.unsubscribe();
      this.subscriptions.delete(filter!);
    }
  }

  // ------------------------------------------------------------------ hot path

  /** Broker handler. Hot path: enqueue only, never await. */
  private onMessage(message: Message, publisher: Publisher | null, names: Set<string>): void {
    this.enqueue({ message, publisher, rules: [...names], basicIngest: false, at: Date.now() });
  }

  private onBasicIngest(message: Message, publisher: Publisher | null): void {
    const m = BASIC_INGEST.exec(message.topic);
    if (!m || !this.rules.has(m[1]!)) return;
    this.enqueue({ message, publisher, rules: [m[1]!], basicIngest: true, at: Date.now() });
  }

  /** Hot path: a push (refusals counted per rule by onDrop); evaluation runs on the queue's later turns. */
  private enqueue(item: QueueItem): void {
    if (this.closed) return;
    this.queue.push(item);
  }

  private process(item: QueueItem): void {
    const { message, publisher } = item;
    const depth = REPUBLISH_DEPTH.get(message.payload) ?? 0;
    if (depth >= MAX_REPUBLISH_DEPTH) {
      for (const name of item.rules) this.drop(name, 'republish_loop');
      return;
    }
    let parsed: ParsedPayload | null = null;
    let ctx: SqlContext | null = null;
    for (const name of item.rules) {
      const loaded = this.rules.get(name);
      if (!loaded || loaded.rule.ruleDisabled) continue;
      parsed ??= parsePayload(message.payload, this.maxJsonDepth);
      ctx ??= {
        topic: message.topic,
        payload: message.payload,
        clientId: publisher?.clientId ?? 'n/a',
        principal: publisher?.principal.id,
        timestamp: item.at,
        accountId: this.options.accountId,
        traceId: `${item.at.toString(16)}-${(this.traceSeq++).toString(16)}`,
        maxJsonDepth: this.maxJsonDepth,
      };
      let result;
      let bytes: Buffer;
      try {
        result = loaded.sql.evaluate(ctx, parsed);
        bytes = result.matched ? outputBytes(result.value) : Buffer.alloc(0);
      } catch (err) {
        this.evaluationFailed(loaded, ctx, err);
        continue;
      }
      if (!result.matched) continue;
      const c = this.counter(name);
      c.matched++;
      this.metrics.countMatched(name);
      const input: ActionInput = { ctx, parsed, output: result.value, bytes };
      const trace = this.maybeTrace(c, input);
      const origin: Origin = {
        topic: message.topic,
        clientId: ctx.clientId ?? 'n/a',
        traceId: ctx.traceId ?? '',
        payloadBase64: '',
        receivedAt: item.at,
      };
      const group: FailureGroup | null = loaded.errorAction
        ? {
            pending: loaded.actions.length,
            failures: [],
            origin: null,
            errorAction: loaded.errorAction.config,
          }
        : null;
      loaded.actions.forEach((action, i) =>
        this.deliver(loaded, i, action, input, origin, trace, depth, group),
      );
    }
  }

  /**
   * A message the rule cannot evaluate (payload too deep, a function refusing its input): a rule error,
   * counted as evaluation_error, logged, and reported to the errorAction with one failure per action
   * (none of them ran). The message itself was delivered by the broker regardless.
   */
  private evaluationFailed(loaded: LoadedRule, ctx: SqlContext, err: unknown): void {
    const name = loaded.rule.ruleName;
    const message = err instanceof Error ? err.message : String(err);
    this.options.logger.warn({ rule: name, topic: ctx.topic, error: message }, 'rule evaluation failed');
    this.drop(name, 'evaluation_error');
    if (!loaded.errorAction) return;
    const origin: Origin = {
      topic: ctx.topic,
      clientId: ctx.clientId ?? 'n/a',
      traceId: ctx.traceId ?? '',
      payloadBase64: ctx.payload.toString('base64'),
      receivedAt: ctx.timestamp,
    };
    const failures = loaded.actions.map((a) => ({
      failedAction: AWS_ACTION_NAMES[a.kind] ?? a.kind,
      failedResource: resourceOf(a.config, null),
      errorMessage: message,
    }));
    const errorPayload = {
      ruleName: name,
      topic: origin.topic,
      cloudwatchTraceId: origin.traceId,
      clientId: origin.clientId,
      base64OriginalPayload: origin.payloadBase64,
      failures,
    };
    this.sendErrorAction(name, loaded.errorAction.config, errorPayload, origin);
  }

  private maybeTrace(c: RuleCounters, input: ActionInput): TraceEntry | null {
    const now = Date.now();
    if (now - c.lastTraceAt < this.traceIntervalMs) return null;
    c.lastTraceAt = now;
    const entry: TraceEntry = {
      at: input.ctx.timestamp,
      topic: input.ctx.topic,
      clientId: input.ctx.clientId ?? 'n/a',
      payload: preview(input.ctx.payload),
      output: preview(input.bytes),
      actions: [],
    };
    c.traces.push(entry);
    if (c.traces.length > 20) c.traces.shift();
    return entry;
  }

  // ------------------------------------------------------------------ delivery

  private deliver(
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
    const settle = () => this.settle(name, group);
    const c = this.counter(name);
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
      this.giveUp(
        name,
        action.config,
        null,
        message,
        'permanent_failure',
        withPayload(origin, input),
        loaded.errorAction?.config ?? null,
        group,
      );
      settle();
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
      void this.sinks
        .execute(action.config, request, depth)
        .then(
          () => {
            this.ok(name, action.kind, origin.receivedAt);
            if (t) t.outcome = 'ok';
            settle();
          },
          (err: unknown) => {
            const message = (err as Error).message;
            if (t) Object.assign(t, { outcome: 'failed', error: message });
            c.actionFailed++;
            this.giveUp(
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
          },
        )
        .catch((err: unknown) => this.backgroundFailed(name, 'republish delivery', err));
      return;
    }
    const key = `${name}#${index}`;
    const state = this.state(key);
    const errorAction = loaded.errorAction?.config ?? null;
    // The time-series writer is itself a bounded batching queue; other sinks get maxInFlightPerAction.
    const limit = action.kind === 'timeseries' ? Math.max(this.maxInFlight, 10_000) : this.maxInFlight;
    if (this.options.writeAhead || state.pending > 0 || state.inFlight >= limit) {
      // Keep order behind waiting rows; spill instead of growing memory.
      if (t) t.outcome = 'queued';
      this.toOutbox(
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
    const p = this.sinks
      .execute(action.config, request)
      .then(
        () => {
          this.ok(name, action.kind, origin.receivedAt);
          if (t) Object.assign(t, { outcome: 'ok', ms: Date.now() - started });
          settle();
        },
        (err: unknown) => {
          const e =
            err instanceof ActionError ? err : new ActionError(String((err as Error)?.message ?? err), true);
          if (t) Object.assign(t, { outcome: e.retryable ? 'queued' : 'failed', error: e.message });
          c.actionFailed++;
          this.metrics.countAction(name, action.kind, 'failed');
          if (!e.retryable) {
            this.giveUp(
              name,
              action.config,
              request,
              e.message,
              'permanent_failure',
              withPayload(origin, input),
              errorAction,
              group,
            );
            settle();
            return;
          }
          const delay = this.backoff(state, 1);
          this.toOutbox(
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
      .catch((err: unknown) => this.backgroundFailed(name, 'delivery', err))
      .finally(() => {
        state.inFlight--;
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  private ok(rule: string, kind: string, receivedAt: number): void {
    const c = this.counter(rule);
    c.actionOk++;
    const ms = Date.now() - receivedAt;
    c.observeLatency(ms);
    this.metrics.countAction(rule, kind, 'ok');
    this.metrics.observeLatency(rule, ms / 1000);
  }

  private backoff(state: ActionState, attempts: number): number {
    const base = Math.min(this.o.maxBackoffMs, this.o.baseBackoffMs * 2 ** Math.min(attempts - 1, 20));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.backoffMs = delay;
    state.blockedUntil = Date.now() + delay;
    return delay;
  }

  private toOutbox(
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
    if (this.outboxCount >= this.o.maxRows) {
      this.giveUp(rule, action, request, lastError ?? 'outbox full', 'outbox_full', origin, errorAction);
      return;
    }
    const c = this.counter(rule);
    c.queued++;
    this.metrics.countAction(rule, Object.keys(action)[0]!, 'queued');
    this.state(key).pending++;
    this.outboxCount++;
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
      () => void this.flushSpill().catch((err: unknown) => this.backgroundFailed(rule, 'outbox write', err)),
      5,
    );
  }

  /** Write spilled deliveries to the outbox in one transaction. */
  private async flushSpill(): Promise<void> {
    if (this.spillTimer) clearTimeout(this.spillTimer);
    this.spillTimer = null;
    while (this.spillFlush) await this.spillFlush;
    if (this.spill.length === 0) return;
    const batch = this.spill;
    this.spill = [];
    this.spillFlush = this.store.enqueue(batch).then(
      () => {
        // Write-ahead rows are due now: attempt them without waiting for the next poll.
        if (this.options.writeAhead) setImmediate(() => this.retryTick());
      },
      (err: unknown) => {
        this.options.logger.error({ err, rows: batch.length }, 'outbox write failed; deliveries dropped');
        for (const row of batch) {
          this.outboxCount--;
          this.state(row.actionKey).pending--;
          this.giveUp(
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

  private retryTick(): void {
    if (this.retryRun || this.closed || this.outboxCount === 0) return;
    this.retryRun = this.retryDue()
      .catch((err: unknown) => this.options.logger.warn({ err }, 'outbox retry pass failed'))
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
    const rows = await this.store.claimDue(now, 500, 60_000);
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
          await this.store.wake(key, Date.now());
        }
        continue;
      }
      // The sink failed again: the untried rows wait with the action's new backoff.
      const nextAt = state.blockedUntil || Date.now() + this.o.baseBackoffMs;
      for (const row of rows.slice(i))
        await this.store.reschedule(row.id, row.attempts, nextAt, row.lastError ?? '');
      return;
    }
  }

  /** Returns true when delivered (or given up for good), false when it should wait. */
  private async retryOne(row: OutboxRow): Promise<boolean> {
    const state = this.state(row.actionKey);
    const action = row.action as ActionConfig;
    const kind = Object.keys(action)[0]!;
    try {
      await this.sinks.execute(action, row.request as ActionRequest);
      await this.store.complete(row.id);
      this.outboxCount--;
      state.pending--;
      this.ok(row.ruleName, kind, row.origin.receivedAt);
      return true;
    } catch (err) {
      const e = err instanceof ActionError ? err : new ActionError((err as Error).message, true);
      const attempts = row.attempts + 1;
      this.counter(row.ruleName).actionFailed++;
      this.metrics.countAction(row.ruleName, kind, 'failed');
      const expired = attempts >= this.o.maxAttempts || Date.now() - row.createdAt > this.o.maxAgeMs;
      if (!e.retryable || expired) {
        await this.store.complete(row.id);
        this.outboxCount--;
        state.pending--;
        this.giveUp(
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
      await this.store.reschedule(row.id, attempts, Date.now() + delay, e.message);
      return false;
    }
  }

  /**
   * A delivery is given up: count the drop and send the rule's errorAction AWS's error payload
   * (reference §10.6: ruleName, topic, cloudwatchTraceId, clientId, base64OriginalPayload, failures[]).
   */
  private giveUp(
    rule: string,
    action: ActionConfig,
    request: ActionRequest | null,
    message: string,
    reason: DropReason,
    origin: Origin,
    errorAction: ActionConfig | null,
    group: FailureGroup | null = null,
  ): void {
    this.drop(rule, reason);
    this.options.logger.warn({ rule, reason, error: message }, 'rule action delivery given up');
    if (!errorAction) return;
    const kind = Object.keys(action)[0] as keyof typeof AWS_ACTION_NAMES;
    if (group) {
      group.origin = origin;
      group.failures.push({
        failedAction: AWS_ACTION_NAMES[kind] ?? kind,
        failedResource: resourceOf(action, request),
        errorMessage: message,
      });
      return;
    }
    const errorPayload = {
      ruleName: rule,
      topic: origin.topic,
      cloudwatchTraceId: origin.traceId,
      clientId: origin.clientId,
      base64OriginalPayload: origin.payloadBase64,
      failures: [
        {
          failedAction: AWS_ACTION_NAMES[kind] ?? kind,
          failedResource: resourceOf(action, request),
          errorMessage: message,
        },
      ],
    };
    this.sendErrorAction(rule, errorAction, errorPayload, origin);
  }

  /** One first attempt of the group finished; after the last, report its permanent failures at once. */
  private settle(rule: string, group: FailureGroup | null): void {
    if (!group || --group.pending > 0 || group.failures.length === 0 || !group.origin) return;
    const o = group.origin;
    const errorPayload = {
      ruleName: rule,
      topic: o.topic,
      cloudwatchTraceId: o.traceId,
      clientId: o.clientId,
      base64OriginalPayload: o.payloadBase64,
      failures: group.failures,
    };
    this.sendErrorAction(rule, group.errorAction, errorPayload, o);
  }

  private sendErrorAction(
    rule: string,
    errorAction: ActionConfig,
    errorPayload: Record<string, unknown>,
    origin: Origin,
  ): void {
    const loaded = this.rules.get(rule);
    const version = loaded?.rule.awsIotSqlVersion ?? DEFAULT_SQL_VERSION;
    let compiled: CompiledAction;
    let request: ActionRequest;
    try {
      compiled = compileAction(errorAction, version, 'errorAction');
      const payload = Buffer.from(origin.payloadBase64, 'base64');
      const ctx: SqlContext = {
        topic: origin.topic,
        payload,
        clientId: origin.clientId,
        timestamp: Date.now(),
        accountId: this.options.accountId,
        traceId: origin.traceId,
        maxJsonDepth: this.maxJsonDepth,
      };
      const bytes = Buffer.from(JSON.stringify(errorPayload));
      // The errorAction's templates see a payload that cannot be evaluated as a binary one.
      const parsed = parsePayload(payload, this.maxJsonDepth);
      request = compiled.prepare({
        ctx,
        parsed: parsed.error ? { json: false, value: undefined } : parsed,
        output: errorPayload,
        bytes,
      });
    } catch (err) {
      this.options.logger.warn({ err, rule }, 'errorAction could not be prepared');
      return;
    }
    this.counter(rule).errorActions++;
    const p = Promise.resolve()
      .then(() => this.sinks.execute(compiled.config, request))
      .catch((err: unknown) => {
        // The error action gets its own retries through the outbox, without a further error action.
        if (compiled.durable && err instanceof ActionError && err.retryable)
          this.toOutbox(
            rule,
            `${rule}#error`,
            compiled.config,
            request,
            origin,
            null,
            1,
            Date.now() + this.o.baseBackoffMs,
            err.message,
          );
        else this.options.logger.warn({ err, rule }, 'errorAction failed');
      })
      .catch((err: unknown) => this.backgroundFailed(rule, 'errorAction', err))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /**
   * Last line of defence for work running off the caller's stack (sink callbacks, timers): a throw there
   * is a bug, counted (internal_error) and logged, never an unhandled rejection that ends the process.
   */
  private backgroundFailed(rule: string, what: string, err: unknown): void {
    this.drop(rule, 'internal_error');
    this.options.logger.error({ err, rule }, `rules engine: ${what} failed unexpectedly`);
  }

  private drop(rule: string, reason: DropReason): void {
    const c = this.counter(rule);
    c.dropped[reason] = (c.dropped[reason] ?? 0) + 1;
    this.metrics.dropped.inc({ rule, reason });
  }

  private counter(rule: string): RuleCounters {
    let c = this.counters.get(rule);
    if (!c) this.counters.set(rule, (c = new RuleCounters()));
    return c;
  }

  private state(key: string): ActionState {
    let s = this.actionStates.get(key);
    if (!s) this.actionStates.set(key, (s = { inFlight: 0, pending: 0, blockedUntil: 0, backoffMs: 0 }));
    return s;
  }

  // ------------------------------------------------------------------ inspection

  stats(rule: string): RuleStats & { outboxPending: number } {
    const pending = [...this.actionStates.entries()]
      .filter(([k]) => k.startsWith(`${rule}#`))
      .reduce((n, [, s]) => n + s.pending, 0);
    return { ...this.counter(rule).snapshot(), outboxPending: pending };
  }

  traces(rule: string): readonly TraceEntry[] {
    return [...this.counter(rule).traces];
  }

  totals(): { queue: number; outbox: number; rules: number } {
    return { queue: this.queue.depth, outbox: this.outboxCount, rules: this.rules.size };
  }

  /** Evaluate a rule on a sample message and render each action's request, without delivering anything. */
  async test(
    name: string,
    sample: { topic?: string; payload: Buffer; clientId?: string; principal?: string },
  ): Promise<RuleTestResult> {
    const rule = await this.getRule(name);
    const loaded = this.rules.get(name) ?? { rule, ...RulesEngine.compile(name, rule) };
    const topic = sample.topic ?? sampleTopic(loaded.sql.topicFilter);
    const ctx: SqlContext = {
      topic,
      payload: sample.payload,
      clientId: sample.clientId ?? 'n/a',
      principal: sample.principal,
      timestamp: Date.now(),
      accountId: this.options.accountId,
      traceId: 'test',
      maxJsonDepth: this.maxJsonDepth,
    };
    const parsed = parsePayload(sample.payload, this.maxJsonDepth);
    // A payload too deep to evaluate is the caller's error (InvalidRequestException), as on the API.
    if (parsed.error) throw parsed.error;
    let result;
    try {
      result = loaded.sql.evaluate(ctx, parsed);
    } catch (err) {
      if (err instanceof ThingsteadError) throw err;
      throw new ThingsteadError(
        'InvalidRequest',
        `The rule cannot be evaluated on this payload: ${String(err)}`,
      );
    }
    if (!result.matched) return { matched: false, actions: [] };
    const bytes = outputBytes(result.value);
    const input: ActionInput = { ctx, parsed, output: result.value, bytes };
    return {
      matched: true,
      ...(Buffer.isBuffer(result.value)
        ? { outputBase64: bytes.toString('base64') }
        : { output: toJson(result.value) }),
      actions: loaded.actions.map((a) => {
        try {
          const request = a.prepare(input);
          return { kind: a.kind, resource: resourceOf(a.config, request), request };
        } catch (err) {
          return { kind: a.kind, resource: resourceOf(a.config, null), error: (err as Error).message };
        }
      }),
    };
  }

  /** Wait until the queue is empty, no delivery is in flight and the spill buffer is written. */
  async idle(): Promise<void> {
    for (;;) {
      await this.queue.idle();
      if (this.inFlight.size === 0 && this.spill.length === 0 && !this.spillFlush && this.queue.depth === 0)
        return;
      await Promise.allSettled([...this.inFlight]);
      await this.flushSpill();
    }
  }

  /**
   * Stop: unsubscribe, evaluate what is queued, let in-flight deliveries settle (failures land in the
   * outbox), write the spill buffer, close sink connections. Nothing acknowledged is lost on a clean stop.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const sub of this.subscriptions.values()) sub.unsubscribe();
    this.subscriptions.clear();
    this.basicIngestUnsub?.();
    await this.idle();
    this.closed = true;
    await this.queue.close();
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.unsubscribeEvents?.();
    await this.retryRun;
    await this.flushSpill();
    await this.sinks.close();
  }
}

function normalize(p: TopicRulePayload): TopicRulePayload {
  return {
    sql: p.sql,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ruleDisabled: p.ruleDisabled === true,
    awsIotSqlVersion: p.awsIotSqlVersion ?? DEFAULT_SQL_VERSION,
    actions: p.actions,
    ...(p.errorAction ? { errorAction: p.errorAction } : {}),
  };
}

function withPayload(origin: Origin, input: ActionInput): Origin {
  return origin.payloadBase64 ? origin : { ...origin, payloadBase64: input.ctx.payload.toString('base64') };
}

function preview(b: Buffer): string {
  const s = b.subarray(0, 512).toString('utf8');
  return b.length > 512 ? `${s}…` : s;
}

/** A concrete topic for a filter, for `rules test` without --topic: wildcards become "sample". */
function sampleTopic(filter: string | null): string {
  if (!filter) return 'sample';
  return filter
    .split('/')
    .map((l) => (l === '+' || l === '#' ? 'sample' : l))
    .join('/');
}
