/**
 * The rule's errorAction: when a delivery is given up (or a message cannot be evaluated), the rule's
 * errorAction gets AWS's error payload (reference §10.6: ruleName, topic, cloudwatchTraceId, clientId,
 * base64OriginalPayload, failures[]). One message's first attempts report together, in one payload.
 */
import type { Logger } from '../observability/index.js';
import {
  ActionError,
  AWS_ACTION_NAMES,
  compileAction,
  resourceOf,
  type ActionInput,
  type ActionRequest,
  type CompiledAction,
} from './actions.js';
import { parsePayload, type SqlContext } from './sql/index.js';
import type { Sinks } from './sinks/index.js';
import type { DropReason, RuleLedger } from './stats.js';
import type { Origin } from './store.js';
import type { ActionConfig } from './types.js';

interface Failure {
  failedAction: string;
  failedResource: string;
  errorMessage: string;
}

/**
 * The first attempts of one message's actions for one rule: permanent failures among them are reported to
 * errorAction together, in one error payload (AWS: one message per rule and message, listing all failures).
 */
export interface FailureGroup {
  pending: number;
  readonly failures: Failure[];
  origin: Origin | null;
  readonly errorAction: ActionConfig;
}

export function failureGroup(actions: number, errorAction: CompiledAction | null): FailureGroup | null {
  return errorAction
    ? { pending: actions, failures: [], origin: null, errorAction: errorAction.config }
    : null;
}

/** The origin with the original payload filled in (error payloads carry it; the fast path leaves it out). */
export function withPayload(origin: Origin, input: ActionInput): Origin {
  return origin.payloadBase64 ? origin : { ...origin, payloadBase64: input.ctx.payload.toString('base64') };
}

export interface ErrorActionDeps {
  readonly ledger: RuleLedger;
  readonly sinks: Sinks;
  readonly logger: Logger;
  readonly accountId: string | undefined;
  readonly maxJsonDepth: number;
  /** The SQL version of a loaded rule (its errorAction's templates are compiled with it). */
  readonly sqlVersion: (rule: string) => string;
  /** A durable errorAction failed in a retryable way: hand it to the outbox (no further errorAction). */
  readonly retryLater: (
    rule: string,
    config: ActionConfig,
    request: ActionRequest,
    origin: Origin,
    error: string,
  ) => void;
}

export class ErrorActions {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly d: ErrorActionDeps) {}

  /** errorAction sends not yet settled. */
  get pending(): number {
    return this.inFlight.size;
  }

  settled(): Promise<unknown> {
    return Promise.allSettled([...this.inFlight]);
  }

  /**
   * A delivery is given up: count the drop, log it, and report it to the rule's errorAction, or add it to
   * its failure group when the message's first attempts are still settling.
   */
  giveUp(
    rule: string,
    action: ActionConfig,
    request: ActionRequest | null,
    message: string,
    reason: DropReason,
    origin: Origin,
    errorAction: ActionConfig | null,
    group: FailureGroup | null = null,
  ): void {
    this.d.ledger.drop(rule, reason);
    this.d.logger.warn({ rule, reason, error: message }, 'rule action delivery given up');
    if (!errorAction) return;
    const failure = failureOf(action, request, message);
    if (group) {
      group.origin = origin;
      group.failures.push(failure);
      return;
    }
    this.send(rule, errorAction, errorPayload(rule, origin, [failure]), origin);
  }

  /** One first attempt of the group finished; after the last, report its permanent failures at once. */
  settle(rule: string, group: FailureGroup | null): void {
    if (!group || --group.pending > 0 || group.failures.length === 0 || !group.origin) return;
    this.send(rule, group.errorAction, errorPayload(rule, group.origin, group.failures), group.origin);
  }

  /** A message the rule could not evaluate: one failure per action (none of them ran). */
  evaluationFailed(
    rule: string,
    actions: readonly CompiledAction[],
    errorAction: CompiledAction,
    origin: Origin,
    message: string,
  ): void {
    const failures = actions.map((a) => ({
      failedAction: AWS_ACTION_NAMES[a.kind] ?? a.kind,
      failedResource: resourceOf(a.config, null),
      errorMessage: message,
    }));
    this.send(rule, errorAction.config, errorPayload(rule, origin, failures), origin);
  }

  private send(
    rule: string,
    errorAction: ActionConfig,
    errorPayload: Record<string, unknown>,
    origin: Origin,
  ): void {
    let compiled: CompiledAction;
    let request: ActionRequest;
    try {
      compiled = compileAction(errorAction, this.d.sqlVersion(rule), 'errorAction');
      const payload = Buffer.from(origin.payloadBase64, 'base64');
      const ctx: SqlContext = {
        topic: origin.topic,
        payload,
        clientId: origin.clientId,
        timestamp: Date.now(),
        accountId: this.d.accountId,
        traceId: origin.traceId,
        maxJsonDepth: this.d.maxJsonDepth,
      };
      const bytes = Buffer.from(JSON.stringify(errorPayload));
      // The errorAction's templates see a payload that cannot be evaluated as a binary one.
      const parsed = parsePayload(payload, this.d.maxJsonDepth);
      request = compiled.prepare({
        ctx,
        parsed: parsed.error ? { json: false, value: undefined } : parsed,
        output: errorPayload,
        bytes,
      });
    } catch (err) {
      this.d.logger.warn({ err, rule }, 'errorAction could not be prepared');
      return;
    }
    this.d.ledger.counter(rule).errorActions++;
    const p = Promise.resolve()
      .then(() => this.d.sinks.execute(compiled.config, request))
      .catch((err: unknown) => {
        // The error action gets its own retries through the outbox, without a further error action.
        if (compiled.durable && err instanceof ActionError && err.retryable)
          this.d.retryLater(rule, compiled.config, request, origin, err.message);
        else this.d.logger.warn({ err, rule }, 'errorAction failed');
      })
      .catch((err: unknown) => this.d.ledger.backgroundFailed(rule, 'errorAction', err))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}

function failureOf(action: ActionConfig, request: ActionRequest | null, message: string): Failure {
  const kind = Object.keys(action)[0] as keyof typeof AWS_ACTION_NAMES;
  return {
    failedAction: AWS_ACTION_NAMES[kind] ?? kind,
    failedResource: resourceOf(action, request),
    errorMessage: message,
  };
}

function errorPayload(rule: string, origin: Origin, failures: Failure[]): Record<string, unknown> {
  return {
    ruleName: rule,
    topic: origin.topic,
    cloudwatchTraceId: origin.traceId,
    clientId: origin.clientId,
    base64OriginalPayload: origin.payloadBase64,
    failures,
  };
}
