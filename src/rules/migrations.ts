import type { Migration } from '../store/index.js';

/**
 * Topic rules (the AWS TopicRulePayload as JSON) and the delivery outbox: one row per action delivery that
 * could not be made at once (sink down, too many in flight), retried with backoff until it succeeds or
 * is given up (then counted as dropped and reported to the rule's errorAction).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'topic rules and delivery outbox',
    sqlite: `
      CREATE TABLE topic_rules (
        name TEXT PRIMARY KEY, payload TEXT NOT NULL, topic_pattern TEXT, disabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE rule_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, rule_name TEXT NOT NULL, action_key TEXT NOT NULL,
        action TEXT NOT NULL, request TEXT NOT NULL, origin TEXT NOT NULL, error_action TEXT,
        attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, last_error TEXT);
      CREATE INDEX rule_outbox_due ON rule_outbox (next_at);
      CREATE INDEX rule_outbox_action ON rule_outbox (action_key);
    `,
    postgres: `
      CREATE TABLE topic_rules (
        name TEXT PRIMARY KEY, payload TEXT NOT NULL, topic_pattern TEXT, disabled BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
      CREATE TABLE rule_outbox (
        id BIGSERIAL PRIMARY KEY, rule_name TEXT NOT NULL, action_key TEXT NOT NULL,
        action TEXT NOT NULL, request TEXT NOT NULL, origin TEXT NOT NULL, error_action TEXT,
        attempts INTEGER NOT NULL, next_at BIGINT NOT NULL, created_at BIGINT NOT NULL, last_error TEXT);
      CREATE INDEX rule_outbox_due ON rule_outbox (next_at);
      CREATE INDEX rule_outbox_action ON rule_outbox (action_key);
    `,
  },
];
