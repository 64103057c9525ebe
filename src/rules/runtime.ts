/**
 * The rule runtime: evaluation of matched messages, off the MQTT path.
 *
 * Contract: `enqueue` is called on the broker's routing path (through the catalog's subscriptions) and only
 * pushes onto the bounded evaluation queue (src/work; hot path: no await, no I/O). The queue drains in time
 * slices; each message's payload is parsed once for all its rules, each matching rule's actions are handed
 * to delivery. Drops are counted per rule: queue_full (queue bound), republish_loop (a rule feeding itself),
 * evaluation_error (the rule cannot evaluate the payload, or a bug caught by the queue).
 */
import { E, ThingsteadError } from '../errors/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { Message, Publisher } from '../mqtt/index.js';
import { WorkQueue } from '../work/index.js';
import { outputBytes, resourceOf, type ActionInput, type ActionRequest } from './actions.js';
import { compileRule, type LoadedRule, type RuleCatalog } from './catalog.js';
import type { Delivery } from './delivery.js';
import { failureGroup } from './error-action.js';
import { parsePayload, toJson, type ParsedPayload, type SqlContext } from './sql/index.js';
import { REPUBLISH_DEPTH } from './sinks/index.js';
import type { RuleCounters, RuleLedger, TraceEntry } from './stats.js';
import type { Origin } from './store.js';

/** Republish hops after which a message is dropped (reason republish_loop): a rule feeding itself stops. */
const MAX_REPUBLISH_DEPTH = 8;

interface QueueItem {
  readonly message: Message;
  readonly publisher: Publisher | null;
  /** Rule names to evaluate (one subscription's rules), or the Basic Ingest rule. */
  readonly rules: readonly string[];
  readonly basicIngest: boolean;
  readonly at: number;
}

/** What `rules test` shows: SELECT's output and each action's rendered request, without delivering. */
export interface RuleTestResult {
  readonly matched: boolean;
  readonly output?: string;
  readonly outputBase64?: string;
  readonly actions: Array<{ kind: string; resource: string; request?: ActionRequest; error?: string }>;
}

export interface RuntimeDeps {
  readonly catalog: RuleCatalog;
  readonly delivery: Delivery;
  readonly ledger: RuleLedger;
  readonly logger: Logger;
  readonly metrics: Registry | undefined;
  readonly accountId: string | undefined;
  readonly queueSize: number;
  readonly queueBytes: number;
  readonly traceIntervalMs: number;
  readonly maxJsonDepth: number;
  /** Usage metering: a rule matched `bytes` of a message from `publisher` and starts `actions` actions. */
  readonly onRuleMatched?:
    ((publisher: Publisher | null, topic: string, bytes: number, actions: number) => void) | undefined;
}

export class RuleRuntime {
  /** The evaluation queue (src/work): bounded by queueSize and queueBytes, drained in time slices. */
  private readonly queue: WorkQueue<QueueItem>;
  private traceSeq = 0;
  private closed = false;

  constructor(private readonly d: RuntimeDeps) {
    this.queue = new WorkQueue<QueueItem>({
      name: 'rules',
      maxItems: d.queueSize,
      maxBytes: d.queueBytes,
      sizeOf: (item) => item.message.payload.length + item.message.topic.length + 64,
      logger: d.logger,
      metrics: d.metrics,
      handle: (item) => this.process(item),
      // Last line of defence: one message must never stop the drain or end the process (the queue logs it).
      onError: (item) => {
        for (const name of item.rules) d.ledger.drop(name, 'evaluation_error');
      },
      onDrop: (item, reason) => {
        for (const name of item.rules) d.ledger.drop(name, reason);
      },
    });
  }

  /** Messages waiting for evaluation. */
  get depth(): number {
    return this.queue.depth;
  }

  /** Broker handler (through the catalog). Hot path: a push; refusals are counted per rule by onDrop. */
  readonly enqueue = (
    message: Message,
    publisher: Publisher | null,
    rules: readonly string[],
    basicIngest: boolean,
  ): void => {
    if (this.closed) return;
    this.queue.push({ message, publisher, rules, basicIngest, at: Date.now() });
  };

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Evaluate what is queued, then take nothing more. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.close();
  }

  private process(item: QueueItem): void {
    const { message, publisher } = item;
    const { ledger, delivery } = this.d;
    const depth = REPUBLISH_DEPTH.get(message.payload) ?? 0;
    if (depth >= MAX_REPUBLISH_DEPTH) {
      for (const name of item.rules) ledger.drop(name, 'republish_loop');
      return;
    }
    const catalog = this.d.catalog;
    let parsed: ParsedPayload | null = null;
    let ctx: SqlContext | null = null;
    for (const name of item.rules) {
      const loaded = catalog.get(name);
      if (!loaded || loaded.rule.ruleDisabled) continue;
      parsed ??= parsePayload(message.payload, this.d.maxJsonDepth);
      ctx ??= {
        topic: message.topic,
        payload: message.payload,
        clientId: publisher?.clientId ?? 'n/a',
        principal: publisher?.principal.id,
        timestamp: item.at,
        accountId: this.d.accountId,
        traceId: `${item.at.toString(16)}-${(this.traceSeq++).toString(16)}`,
        maxJsonDepth: this.d.maxJsonDepth,
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
      const c = ledger.counter(name);
      c.matched++;
      ledger.metrics.countMatched(name);
      this.d.onRuleMatched?.(publisher, message.topic, message.payload.length, loaded.actions.length);
      const input: ActionInput = { ctx, parsed, output: result.value, bytes };
      const trace = this.maybeTrace(c, input);
      const origin: Origin = {
        topic: message.topic,
        clientId: ctx.clientId ?? 'n/a',
        traceId: ctx.traceId ?? '',
        payloadBase64: '',
        receivedAt: item.at,
      };
      const group = failureGroup(loaded.actions.length, loaded.errorAction);
      loaded.actions.forEach((action, i) =>
        delivery.deliver(loaded, i, action, input, origin, trace, depth, group),
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
    this.d.logger.warn({ rule: name, topic: ctx.topic, error: message }, 'rule evaluation failed');
    this.d.ledger.drop(name, 'evaluation_error');
    if (!loaded.errorAction) return;
    const origin: Origin = {
      topic: ctx.topic,
      clientId: ctx.clientId ?? 'n/a',
      traceId: ctx.traceId ?? '',
      payloadBase64: ctx.payload.toString('base64'),
      receivedAt: ctx.timestamp,
    };
    this.d.delivery.errors.evaluationFailed(name, loaded.actions, loaded.errorAction, origin, message);
  }

  private maybeTrace(c: RuleCounters, input: ActionInput): TraceEntry | null {
    const now = Date.now();
    if (now - c.lastTraceAt < this.d.traceIntervalMs) return null;
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

  /** Evaluate a rule on a sample message and render each action's request, without delivering anything. */
  async test(
    name: string,
    sample: { topic?: string; payload: Buffer; clientId?: string; principal?: string },
  ): Promise<RuleTestResult> {
    const catalog = this.d.catalog;
    const rule = await catalog.getRule(name);
    const loaded = catalog.get(name) ?? { rule, ...compileRule(name, rule) };
    const topic = sample.topic ?? sampleTopic(loaded.sql.topicFilter);
    const ctx: SqlContext = {
      topic,
      payload: sample.payload,
      clientId: sample.clientId ?? 'n/a',
      principal: sample.principal,
      timestamp: Date.now(),
      accountId: this.d.accountId,
      traceId: 'test',
      maxJsonDepth: this.d.maxJsonDepth,
    };
    const parsed = parsePayload(sample.payload, this.d.maxJsonDepth);
    // A payload too deep to evaluate is the caller's error (InvalidRequestException), as on the API.
    if (parsed.error) throw parsed.error;
    let result;
    try {
      result = loaded.sql.evaluate(ctx, parsed);
    } catch (err) {
      if (err instanceof ThingsteadError) throw err;
      throw E.RuleNotEvaluable({ reason: String(err) });
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
