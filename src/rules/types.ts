import { z } from 'zod';

/** Rule names: 1..128 of [a-zA-Z0-9_] (reference §11, §12.7). */
export const RULE_NAME_PATTERN = /^[a-zA-Z0-9_]+$/;
/** RULE_NAME_PATTERN as AWS's validation message states it. */
export const RULE_NAME_CONSTRAINT = 'Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$';

const kv = z.array(z.object({ key: z.string().min(1), value: z.string() }).strict());

/** AWS `republish` (reference §10.6). The topic is a template; `$$` writes a literal `$`. */
export const republishSchema = z
  .object({
    roleArn: z.string().optional(),
    topic: z.string().min(1),
    qos: z.number().int().min(0).max(1).optional(),
    headers: z
      .object({
        payloadFormatIndicator: z.string().optional(),
        contentType: z.string().optional(),
        responseTopic: z.string().optional(),
        correlationData: z.string().optional(),
        messageExpiry: z.string().optional(),
        userProperties: kv.optional(),
      })
      .optional(),
  })
  .loose();

/** AWS `http`: POST to a templated URL with templated header values. Thingstead adds timeout and retry knobs. */
export const httpSchema = z
  .object({
    url: z.string().min(1),
    confirmationUrl: z.string().optional(),
    headers: kv.optional(),
    auth: z.unknown().optional(),
    enableBatching: z.boolean().optional(),
    batchConfig: z.unknown().optional(),
    /** Thingstead: request timeout in ms (default 3000). */
    timeoutMs: z.number().int().min(1).max(60_000).optional(),
  })
  .loose();

/** AWS `kafka`: topic, key and partition are templates; clientProperties as in AWS (bootstrap.servers, SSL, SASL). */
export const kafkaSchema = z
  .object({
    destinationArn: z.string().optional(),
    topic: z.string().min(1),
    key: z.string().optional(),
    partition: z.string().optional(),
    clientProperties: z.record(z.string(), z.string()),
    headers: kv.optional(),
  })
  .loose();

/** Thingstead extension: publish to NATS JetStream and wait for the stream's ack. */
export const natsSchema = z
  .object({
    subject: z.string().min(1),
    /** Defaults to the platform's configured NATS servers. */
    servers: z.string().optional(),
    headers: kv.optional(),
    /** Ack wait in ms (default 3000). */
    timeoutMs: z.number().int().min(1).max(60_000).optional(),
  })
  .strict();

/** Thingstead extension: INSERT one row into a user's PostgreSQL table with templated values. */
export const postgresSchema = z
  .object({
    /** Defaults to the platform's configured rules.postgresUrl. */
    connectionString: z.string().optional(),
    table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, 'must be [schema.]table'),
    columns: z
      .array(z.object({ name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), value: z.string() }).strict())
      .min(1),
  })
  .strict();

/**
 * Thingstead extension: write the SELECT output's measures into the built-in time-series store.
 * `thingName` and `timestamp` are templates; `metrics` picks fields of the SELECT output (dotted paths),
 * by default every top-level number or string.
 */
export const timeseriesSchema = z
  .object({
    thingName: z.string().min(1).optional(),
    metrics: z.array(z.string().min(1)).optional(),
    timestamp: z.string().optional(),
  })
  .strict();

export const ACTION_SCHEMAS = {
  republish: republishSchema,
  http: httpSchema,
  kafka: kafkaSchema,
  nats: natsSchema,
  postgres: postgresSchema,
  timeseries: timeseriesSchema,
} as const;
export type ActionKind = keyof typeof ACTION_SCHEMAS;

/** AWS action kinds Thingstead does not run (they target AWS services). */
export const AWS_ONLY_ACTIONS = [
  'lambda',
  'dynamoDB',
  'dynamoDBv2',
  'sns',
  'sqs',
  'kinesis',
  's3',
  'firehose',
  'cloudwatchMetric',
  'cloudwatchAlarm',
  'cloudwatchLogs',
  'elasticsearch',
  'openSearch',
  'salesforce',
  'iotAnalytics',
  'iotEvents',
  'iotSiteWise',
  'stepFunctions',
  'timestream',
  'location',
  'influxDB',
];

/** An `Action`: an object with exactly one action key (reference §10.6). */
export type ActionConfig = { [K in ActionKind]?: z.infer<(typeof ACTION_SCHEMAS)[K]> };

/** The body of CreateTopicRule / ReplaceTopicRule (the bare TopicRulePayload, reference §2). */
export interface TopicRulePayload {
  readonly sql: string;
  readonly description?: string;
  readonly ruleDisabled?: boolean;
  readonly awsIotSqlVersion?: string;
  readonly actions: readonly ActionConfig[];
  readonly errorAction?: ActionConfig;
}

/** A stored rule (GetTopicRule's `rule`). */
export interface TopicRule extends TopicRulePayload {
  readonly ruleName: string;
  readonly topicPattern: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}
