import { migrate, type Database } from '../store/index.js';
import { MIGRATIONS } from './migrations.js';
import type { TopicRule, TopicRulePayload } from './types.js';

/** What the error payload needs to know about the original message (reference §10.6 error action input). */
export interface Origin {
  readonly topic: string;
  readonly clientId: string;
  readonly traceId: string;
  readonly payloadBase64: string;
  readonly receivedAt: number;
}

/** One delivery waiting in the outbox. `action` and `errorAction` are snapshots of the rule's config. */
export interface OutboxRow {
  readonly id: number;
  readonly ruleName: string;
  readonly actionKey: string;
  readonly action: Record<string, unknown>;
  readonly request: unknown;
  readonly origin: Origin;
  readonly errorAction: Record<string, unknown> | null;
  readonly attempts: number;
  readonly nextAt: number;
  readonly createdAt: number;
  readonly lastError: string | null;
}

export type NewOutboxRow = Omit<OutboxRow, 'id'>;

/** Rules and outbox persistence on the platform database (SQLite or PostgreSQL, portable SQL). */
export class RuleStore {
  private constructor(private readonly db: Database) {}

  static async open(db: Database): Promise<RuleStore> {
    await migrate(db, 'rules', MIGRATIONS);
    return new RuleStore(db);
  }

  /** Returns false when the name is taken. */
  async create(
    name: string,
    payload: TopicRulePayload,
    topicPattern: string | null,
    now: number,
  ): Promise<boolean> {
    const n = await this.db.run(
      'INSERT INTO topic_rules (name, payload, topic_pattern, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) ' +
        'ON CONFLICT (name) DO NOTHING',
      [name, JSON.stringify(payload), topicPattern, payload.ruleDisabled === true, now],
    );
    return n > 0;
  }

  async replace(
    name: string,
    payload: TopicRulePayload,
    topicPattern: string | null,
    now: number,
  ): Promise<boolean> {
    const n = await this.db.run(
      'UPDATE topic_rules SET payload = $2, topic_pattern = $3, disabled = $4, updated_at = $5 WHERE name = $1',
      [name, JSON.stringify(payload), topicPattern, payload.ruleDisabled === true, now],
    );
    return n > 0;
  }

  async setDisabled(name: string, disabled: boolean, now: number): Promise<TopicRule | undefined> {
    const rule = await this.get(name);
    if (!rule) return undefined;
    const { ruleName: _n, topicPattern: _t, createdAt: _c, updatedAt: _u, ...rest } = rule;
    const payload: TopicRulePayload = { ...rest, ruleDisabled: disabled };
    await this.replace(name, payload, rule.topicPattern, now);
    return { ...rule, ruleDisabled: disabled, updatedAt: now };
  }

  async delete(name: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM topic_rules WHERE name = $1', [name])) > 0;
  }

  async get(name: string): Promise<TopicRule | undefined> {
    const rows = await this.db.query<Record<string, unknown>>('SELECT * FROM topic_rules WHERE name = $1', [
      name,
    ]);
    return rows[0] ? toRule(rows[0]) : undefined;
  }

  async list(): Promise<TopicRule[]> {
    const rows = await this.db.query<Record<string, unknown>>('SELECT * FROM topic_rules ORDER BY name');
    return rows.map(toRule);
  }

  // ---- outbox

  async enqueue(rows: readonly NewOutboxRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const r of rows)
        await tx.run(
          'INSERT INTO rule_outbox (rule_name, action_key, action, request, origin, error_action, attempts, next_at, created_at, last_error) ' +
            'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
          [
            r.ruleName,
            r.actionKey,
            JSON.stringify(r.action),
            JSON.stringify(r.request),
            JSON.stringify(r.origin),
            r.errorAction ? JSON.stringify(r.errorAction) : null,
            r.attempts,
            r.nextAt,
            r.createdAt,
            r.lastError,
          ],
        );
    });
  }

  /**
   * Claim up to `limit` due rows: their next_at moves `leaseMs` ahead so no other claimer (another node on
   * PostgreSQL, which also skips rows locked by a concurrent claim) takes them while they are in flight.
   */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxRow[]> {
    return this.db.transaction(async (tx) => {
      const lock = this.db.kind === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
      const rows = await tx.query<Record<string, unknown>>(
        `SELECT * FROM rule_outbox WHERE next_at <= $1 ORDER BY id LIMIT ${Math.max(1, Math.trunc(limit))}${lock}`,
        [now],
      );
      if (rows.length === 0) return [];
      const ids = rows.map((r) => Number(r.id));
      const placeholders = ids.map((_, i) => `$${i + 2}`).join(', ');
      await tx.run(`UPDATE rule_outbox SET next_at = $1 WHERE id IN (${placeholders})`, [
        now + leaseMs,
        ...ids,
      ]);
      return rows.map(toOutboxRow);
    });
  }

  async complete(id: number): Promise<void> {
    await this.db.run('DELETE FROM rule_outbox WHERE id = $1', [id]);
  }

  async reschedule(id: number, attempts: number, nextAt: number, lastError: string): Promise<void> {
    await this.db.run('UPDATE rule_outbox SET attempts = $2, next_at = $3, last_error = $4 WHERE id = $1', [
      id,
      attempts,
      nextAt,
      lastError,
    ]);
  }

  /** The sink answered again: make every waiting row of this action due now. */
  async wake(actionKey: string, now: number): Promise<void> {
    await this.db.run('UPDATE rule_outbox SET next_at = $2 WHERE action_key = $1 AND next_at > $2', [
      actionKey,
      now,
    ]);
  }

  async pendingByAction(): Promise<Map<string, number>> {
    const rows = await this.db.query<{ action_key: string; n: unknown }>(
      'SELECT action_key, count(*) AS n FROM rule_outbox GROUP BY action_key',
    );
    return new Map(rows.map((r) => [r.action_key, Number(r.n)]));
  }

  async pendingCount(): Promise<number> {
    const rows = await this.db.query<{ n: unknown }>('SELECT count(*) AS n FROM rule_outbox');
    return Number(rows[0]?.n ?? 0);
  }

  async list_outbox(ruleName?: string, limit = 100): Promise<OutboxRow[]> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT * FROM rule_outbox ${ruleName ? 'WHERE rule_name = $1 ' : ''}ORDER BY id LIMIT ${Math.trunc(limit)}`,
      ruleName ? [ruleName] : [],
    );
    return rows.map(toOutboxRow);
  }
}

function toRule(r: Record<string, unknown>): TopicRule {
  const payload = JSON.parse(String(r.payload)) as TopicRulePayload;
  return {
    ...payload,
    ruleDisabled: r.disabled === true || r.disabled === 1,
    ruleName: String(r.name),
    topicPattern: (r.topic_pattern as string | null) ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toOutboxRow(r: Record<string, unknown>): OutboxRow {
  return {
    id: Number(r.id),
    ruleName: String(r.rule_name),
    actionKey: String(r.action_key),
    action: JSON.parse(String(r.action)) as Record<string, unknown>,
    request: JSON.parse(String(r.request)) as unknown,
    origin: JSON.parse(String(r.origin)) as Origin,
    errorAction:
      typeof r.error_action === 'string' ? (JSON.parse(r.error_action) as Record<string, unknown>) : null,
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    createdAt: Number(r.created_at),
    lastError: (r.last_error as string | null) ?? null,
  };
}
