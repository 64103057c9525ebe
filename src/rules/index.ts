/**
 * The rules engine: AWS IoT SQL rules (reference §10) evaluated off the MQTT path on a bounded queue, with
 * actions (republish, http, kafka, and the Thingstead extensions nats, postgres, timeseries) delivered
 * at-least-once through a store-backed outbox, errorAction in AWS's shape, per-rule metrics and traces.
 * `startRules` starts the engine and the configured stream sources as a context module.
 *
 * Topic rule destinations (destinations.ts) gate the http action: a URL a destination covers is sent to only
 * while it is ENABLED.
 *
 * Imports: api (destination operation helpers), errors, json, observability, store, tags (the x-amz-tagging
 * parser), work (the evaluation queue); types only from config, events, mqtt and timeseries (the platform
 * hands in the broker, the change channel and the writer).
 */
export { RulesEngine, type RulesEngineOptions, type RuleTestResult } from './engine.js';
export { compileSql, parsePayload, SqlParseError, type CompiledSql, type SqlContext } from './sql/index.js';
export { compileTemplate, type Template } from './template.js';
export { buildKafkaRecord, kafkaClientConfig } from './sinks/index.js';
export { compileAction, AWS_ACTION_NAMES, type ActionRequest } from './actions.js';
export type { RuleStats, TraceEntry, DropReason } from './stats.js';
export type { TopicRule, TopicRulePayload, ActionConfig } from './types.js';
export { rulesOperations } from './api.js';
export { startRules } from './module.js';
export {
  TopicRuleDestinations,
  type DestinationStatus,
  type TopicRuleDestinationView,
} from './destinations.js';
export { startSources, sourcePayload, sourceTopic, type Source } from './sources.js';
