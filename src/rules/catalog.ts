/**
 * The rule catalog: rule CRUD against the store, compiled once per change (SQL, action templates), and the
 * broker subscriptions that feed the runtime: one internal subscription per distinct FROM filter (shared by
 * every rule on it), plus Basic Ingest (`$aws/rules/<rule>/...`).
 *
 * Contract: a committed write is installed here at once and announced with a `rule` change event; another
 * process's event reloads the rule it names. The subscription handlers run on the broker's routing path:
 * they only hand the message to `onMessage` (the runtime's queue push), nothing else.
 */
import { E } from '../errors/index.js';
import type { ChangeChannel } from '../events/index.js';
import type { Broker, Message, Publisher } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import { compileAction, type CompiledAction } from './actions.js';
import { compileSql, DEFAULT_SQL_VERSION, type CompiledSql } from './sql/index.js';
import type { RuleStore } from './store.js';
import { RULE_NAME_CONSTRAINT, RULE_NAME_PATTERN, type TopicRule, type TopicRulePayload } from './types.js';

export interface LoadedRule {
  readonly rule: TopicRule;
  readonly sql: CompiledSql;
  readonly actions: readonly CompiledAction[];
  readonly errorAction: CompiledAction | null;
}

export type CompiledRule = Omit<LoadedRule, 'rule'>;

/** Hot path: called on the routing path for each message a rule filter matched. Must only enqueue. */
export type MatchHandler = (
  message: Message,
  publisher: Publisher | null,
  rules: readonly string[],
  basicIngest: boolean,
) => void;

export interface CatalogDeps {
  readonly store: RuleStore;
  readonly broker: Broker | null;
  readonly logger: Logger;
  readonly events: ChangeChannel | undefined;
  readonly region: string | undefined;
  readonly accountId: string | undefined;
}

const MAX_ACTIONS = 10;
const BASIC_INGEST = /^\$aws\/rules\/([^/]+)(\/|$)/;

/** Validate and compile a payload; throws SqlParseException / InvalidRequestException like AWS. */
export function compileRule(name: string, payload: TopicRulePayload): CompiledRule {
  if (!RULE_NAME_PATTERN.test(name) || name.length > 128)
    throw E.MemberConstraint({ value: name, member: 'ruleName', constraint: RULE_NAME_CONSTRAINT });
  if (typeof payload.sql !== 'string' || payload.sql.length === 0)
    throw E.MemberNull({ member: 'topicRulePayload.sql' });
  if (!Array.isArray(payload.actions)) throw E.MemberNull({ member: 'topicRulePayload.actions' });
  if (payload.actions.length > MAX_ACTIONS) throw E.RuleTooManyActions({ max: MAX_ACTIONS });
  const version = payload.awsIotSqlVersion ?? DEFAULT_SQL_VERSION;
  const sql = compileSql(payload.sql, version);
  const actions = payload.actions.map((a, i) => compileAction(a, version, `actions[${i}]`));
  const errorAction = payload.errorAction ? compileAction(payload.errorAction, version, 'errorAction') : null;
  return { sql, actions, errorAction };
}

export class RuleCatalog {
  private readonly rules = new Map<string, LoadedRule>();
  private readonly subscriptions = new Map<string, { rules: Set<string>; unsubscribe: () => void }>();
  private basicIngestUnsub: (() => void) | null = null;
  private unsubscribeEvents: (() => void) | null = null;
  private closed = false;
  private onMessage: MatchHandler = () => undefined;

  constructor(private readonly d: CatalogDeps) {}

  /**
   * Compile every stored rule, subscribe its filter and Basic Ingest with `onMessage` (the runtime's queue
   * push), and follow other processes' rule changes.
   */
  async start(onMessage: MatchHandler): Promise<void> {
    this.onMessage = onMessage;
    for (const rule of await this.d.store.list()) this.load(rule);
    const broker = this.d.broker;
    if (broker)
      this.basicIngestUnsub = broker.subscribeInternal('$aws/rules/#', (m, p) => this.onBasicIngest(m, p));
    this.unsubscribeEvents =
      this.d.events?.subscribe(['rule'], (e, origin) => {
        if (origin !== 'remote' || this.closed) return undefined;
        return (e.kind === 'rule' ? this.reloadRule(e.name) : this.refresh()).catch((err: unknown) =>
          this.d.logger.warn({ err }, 'cannot apply a rule change from another node'),
        );
      }) ?? null;
  }

  /** A loaded rule (compiled), enabled or not. */
  get(name: string): LoadedRule | undefined {
    return this.rules.get(name);
  }

  get size(): number {
    return this.rules.size;
  }

  async createRule(name: string, payload: TopicRulePayload): Promise<void> {
    const compiled = compileRule(name, payload);
    const stored = normalize(payload);
    if (!(await this.d.store.create(name, stored, compiled.sql.topicFilter, Date.now())))
      throw E.RuleAlreadyExists({ ruleName: name }, { resourceId: name, resourceArn: this.ruleArn(name) });
    const rule = await this.d.store.get(name);
    if (rule) this.install(rule, compiled);
    await this.changed(name);
  }

  async replaceRule(name: string, payload: TopicRulePayload): Promise<void> {
    const compiled = compileRule(name, payload);
    if (!(await this.d.store.replace(name, normalize(payload), compiled.sql.topicFilter, Date.now())))
      throw E.RuleNotFound({ ruleName: name });
    const rule = await this.d.store.get(name);
    if (rule) this.install(rule, compiled);
    await this.changed(name);
  }

  async deleteRule(name: string): Promise<void> {
    // AWS answers success (or UnauthorizedException) for a missing rule; we stay idempotent too.
    if (await this.d.store.delete(name)) await this.changed(name);
    this.unload(name);
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const rule = await this.d.store.setDisabled(name, !enabled, Date.now());
    if (!rule) throw E.RuleNotFound({ ruleName: name });
    this.load(rule);
    await this.changed(name);
  }

  async getRule(name: string): Promise<TopicRule> {
    const rule = await this.d.store.get(name);
    if (!rule) throw E.RuleNotAuthorized({ ruleName: name });
    return rule;
  }

  ruleArn(name: string): string {
    return `arn:aws:iot:${this.d.region ?? 'us-east-1'}:${this.d.accountId ?? '000000000000'}:rule/${name}`;
  }

  /** Re-read the whole rule table (after change events may have been lost: `resync`). */
  async refresh(): Promise<void> {
    const rules = await this.d.store.list();
    const names = new Set(rules.map((r) => r.ruleName));
    for (const name of [...this.rules.keys()]) if (!names.has(name)) this.unload(name);
    for (const rule of rules)
      if (this.rules.get(rule.ruleName)?.rule.updatedAt !== rule.updatedAt) this.load(rule);
  }

  /** Stop feeding the runtime: unsubscribe every filter, Basic Ingest and change events. */
  close(): void {
    this.closed = true;
    for (const sub of this.subscriptions.values()) sub.unsubscribe();
    this.subscriptions.clear();
    this.basicIngestUnsub?.();
    this.unsubscribeEvents?.();
  }

  /** After a committed rule write: tell the other nodes (they reload that one rule). */
  private async changed(name: string): Promise<void> {
    await this.d.events?.publish({ kind: 'rule', name });
  }

  /** Re-read one rule (another node changed it). */
  private async reloadRule(name: string): Promise<void> {
    const rule = await this.d.store.get(name);
    if (!rule) this.unload(name);
    else if (this.rules.get(name)?.rule.updatedAt !== rule.updatedAt) this.load(rule);
  }

  private load(rule: TopicRule): void {
    try {
      this.install(rule, compileRule(rule.ruleName, rule));
    } catch (err) {
      this.d.logger.error({ err, rule: rule.ruleName }, 'stored rule does not compile; skipped');
    }
  }

  private install(rule: TopicRule, compiled: CompiledRule): void {
    this.unload(rule.ruleName);
    this.rules.set(rule.ruleName, { rule, ...compiled });
    const broker = this.d.broker;
    if (rule.ruleDisabled || !compiled.sql.topicFilter || !broker || this.closed) return;
    const filter = compiled.sql.topicFilter;
    let sub = this.subscriptions.get(filter);
    if (!sub) {
      const names = new Set<string>();
      const onMessage = this.onMessage;
      // Hot path (routing): hand over and return.
      const unsubscribe = broker.subscribeInternal(filter, (m, p) => onMessage(m, p, [...names], false));
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

  private onBasicIngest(message: Message, publisher: Publisher | null): void {
    const m = BASIC_INGEST.exec(message.topic);
    if (!m || !this.rules.has(m[1]!)) return;
    this.onMessage(message, publisher, [m[1]!], true);
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
