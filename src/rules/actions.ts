import { E } from '../errors/index.js';
import {
  compileSql,
  toJson,
  toPlain,
  toText,
  type ParsedPayload,
  type SqlContext,
  type SqlValue,
} from './sql/index.js';
import { compileTemplate, type Template } from './template.js';
import { ACTION_SCHEMAS, AWS_ONLY_ACTIONS, type ActionConfig, type ActionKind } from './types.js';

/** What an action sees of one matched message. */
export interface ActionInput {
  readonly ctx: SqlContext;
  readonly parsed: ParsedPayload;
  /** The SELECT output (document, bare value, or raw bytes). */
  readonly output: SqlValue;
  /** The SELECT output as bytes: raw bytes unchanged, anything else as JSON. */
  readonly bytes: Buffer;
}

/** A failed delivery. Retryable failures go (back) to the outbox; others are given up at once. */
export class ActionError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** The names AWS's error payload uses in `failedAction` (ours follow the same pattern). */
export const AWS_ACTION_NAMES: Record<ActionKind, string> = {
  republish: 'RepublishAction',
  http: 'HttpAction',
  kafka: 'KafkaAction',
  nats: 'NatsAction',
  postgres: 'PostgresAction',
  timeseries: 'TimeseriesAction',
};

/** An action compiled at rule creation: templates parsed once; `prepare` renders one delivery request. */
export interface CompiledAction {
  readonly kind: ActionKind;
  /** The action object as configured (`{ "http": {...} }`), snapshotted into outbox rows. */
  readonly config: ActionConfig;
  /** Durable sinks get at-least-once delivery through the outbox; republish is in-process. */
  readonly durable: boolean;
  /** Render the JSON-serializable request this delivery sends. Throws ActionError on bad input. */
  prepare(input: ActionInput): ActionRequest;
}

export type ActionRequest =
  | {
      kind: 'republish';
      topic: string;
      qos: 0 | 1;
      payload: string;
      contentType?: string;
      responseTopic?: string;
      userProperties?: Record<string, string>;
    }
  | { kind: 'http'; url: string; headers: Array<[string, string]>; body: string; timeoutMs: number }
  | {
      kind: 'kafka';
      topic: string;
      key: string | null;
      partition: number | null;
      value: string;
      headers: Record<string, string>;
    }
  | { kind: 'nats'; subject: string; payload: string; headers: Record<string, string>; timeoutMs: number }
  | { kind: 'postgres'; values: unknown[] }
  | {
      kind: 'timeseries';
      points: Array<{ thing: string; metric: string; ts: number; value: number | string }>;
    };

/** The resource named in an error payload's `failedResource`. */
export function resourceOf(config: ActionConfig, request: ActionRequest | null): string {
  switch (request?.kind) {
    case 'republish':
      return request.topic;
    case 'http':
      return request.url;
    case 'kafka':
      return request.topic;
    case 'nats':
      return request.subject;
    default:
      break;
  }
  if (config.postgres) return config.postgres.table;
  if (config.timeseries) return 'timeseries';
  return config.http?.url ?? config.republish?.topic ?? config.kafka?.topic ?? config.nats?.subject ?? '';
}

/** The single key of an action object, validated. Throws InvalidRequest for unknown or AWS-only kinds. */
export function actionKind(action: unknown, where: string): ActionKind {
  if (typeof action !== 'object' || action === null || Array.isArray(action)) throw E.ActionShape({ where });
  const keys = Object.keys(action);
  if (keys.length !== 1) throw E.ActionKeyCount({ where, count: keys.length });
  const key = keys[0]!;
  if (key in ACTION_SCHEMAS) return key as ActionKind;
  if (AWS_ONLY_ACTIONS.includes(key)) throw E.ActionAwsOnly({ where, action: key });
  throw E.ActionUnknown({ where, action: key });
}

/**
 * Validate an action object and compile its templates (rule creation time). Errors: InvalidRequest for a bad
 * shape, SqlParse for a bad `${...}` expression.
 */
export function compileAction(action: unknown, version: string, where: string): CompiledAction {
  const kind = actionKind(action, where);
  const raw = (action as Record<string, unknown>)[kind];
  const parsed = ACTION_SCHEMAS[kind].safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw E.ActionConfig({ where, action: kind, member: issue.path.join('.'), problem: issue.message });
  }
  const config = { [kind]: parsed.data } as ActionConfig;
  const t = (s: string, field: string) => compileTemplate(s, version, `${where}.${kind}.${field}`);
  switch (kind) {
    case 'republish':
      return republish(config, t);
    case 'http':
      return http(config, t);
    case 'kafka':
      return kafka(config, t);
    case 'nats':
      return nats(config, t);
    case 'postgres':
      return postgres(config, t);
    case 'timeseries':
      return timeseries(config, t, version);
  }
}

type T = (source: string, field: string) => Template;
const kvTemplates = (list: ReadonlyArray<{ key: string; value: string }> | undefined, t: T, field: string) =>
  (list ?? []).map((h, i) => ({ key: h.key, value: t(h.value, `${field}[${i}].value`) }));

function republish(config: ActionConfig, t: T): CompiledAction {
  const c = config.republish!;
  const topic = t(c.topic, 'topic');
  const userProps = kvTemplates(c.headers?.userProperties, t, 'headers.userProperties');
  const contentType = c.headers?.contentType ? t(c.headers.contentType, 'headers.contentType') : null;
  const responseTopic = c.headers?.responseTopic ? t(c.headers.responseTopic, 'headers.responseTopic') : null;
  return {
    kind: 'republish',
    config,
    durable: false,
    prepare({ ctx, parsed, bytes }) {
      const to = topic.render(ctx, parsed);
      if (!to || to.includes('+') || to.includes('#'))
        throw new ActionError(`invalid republish topic '${to}'`, false);
      // [D] Republishing to jobs reserved topics is not supported.
      if (/^\$aws\/things\/[^/]+\/jobs\//.test(to))
        throw new ActionError(`republish to jobs topic '${to}' is not supported`, false);
      return {
        kind: 'republish',
        topic: to,
        qos: c.qos === 1 ? 1 : 0,
        payload: bytes.toString('base64'),
        ...(contentType ? { contentType: contentType.render(ctx, parsed) } : {}),
        ...(responseTopic ? { responseTopic: responseTopic.render(ctx, parsed) } : {}),
        ...(userProps.length
          ? { userProperties: Object.fromEntries(userProps.map((h) => [h.key, h.value.render(ctx, parsed)])) }
          : {}),
      };
    },
  };
}

function http(config: ActionConfig, t: T): CompiledAction {
  const c = config.http!;
  const url = t(c.url, 'url');
  if (!url.dynamic) checkHttpUrl(c.url, c.confirmationUrl);
  const headers = kvTemplates(c.headers, t, 'headers');
  return {
    kind: 'http',
    config,
    durable: true,
    prepare({ ctx, parsed, output, bytes }) {
      const to = url.render(ctx, parsed);
      try {
        checkHttpUrl(to, c.confirmationUrl);
      } catch (err) {
        throw new ActionError((err as Error).message, false);
      }
      const list: Array<[string, string]> = headers.map((h) => [h.key, h.value.render(ctx, parsed)]);
      // [D] content type: application/json for JSON output, application/octet-stream for bytes; a header overrides.
      if (!list.some(([k]) => k.toLowerCase() === 'content-type'))
        list.push([
          'content-type',
          Buffer.isBuffer(output) ? 'application/octet-stream' : 'application/json',
        ]);
      return {
        kind: 'http',
        url: to,
        headers: list,
        body: bytes.toString('base64'),
        timeoutMs: c.timeoutMs ?? 3000,
      };
    },
  };
}

function checkHttpUrl(url: string, confirmationUrl: string | undefined): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw E.HttpActionUrl({ url });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw E.HttpActionScheme({ url });
  // [D] url must start with the confirmed destination's confirmationUrl.
  if (confirmationUrl && !url.startsWith(confirmationUrl))
    throw E.HttpActionConfirmation({ url, confirmationUrl });
}

function kafka(config: ActionConfig, t: T): CompiledAction {
  const c = config.kafka!;
  if (!c.clientProperties['bootstrap.servers']) throw E.KafkaActionServers();
  const topic = t(c.topic, 'topic');
  const key = c.key ? t(c.key, 'key') : null;
  const partition = c.partition ? t(c.partition, 'partition') : null;
  const headers = kvTemplates(c.headers, t, 'headers');
  return {
    kind: 'kafka',
    config,
    durable: true,
    prepare({ ctx, parsed, bytes }) {
      const p = partition?.render(ctx, parsed);
      const part = p === undefined || p === '' ? null : Number(p);
      if (part !== null && (!Number.isInteger(part) || part < 0))
        throw new ActionError(`kafka partition '${p}' is not a non-negative integer`, false);
      return {
        kind: 'kafka',
        topic: topic.render(ctx, parsed),
        key: key ? key.render(ctx, parsed) : null,
        partition: part,
        value: bytes.toString('base64'),
        headers: Object.fromEntries(headers.map((h) => [h.key, h.value.render(ctx, parsed)])),
      };
    },
  };
}

function nats(config: ActionConfig, t: T): CompiledAction {
  const c = config.nats!;
  const subject = t(c.subject, 'subject');
  const headers = kvTemplates(c.headers, t, 'headers');
  return {
    kind: 'nats',
    config,
    durable: true,
    prepare({ ctx, parsed, bytes }) {
      const s = subject.render(ctx, parsed);
      if (!s || /[\s*>]/.test(s)) throw new ActionError(`invalid NATS subject '${s}'`, false);
      return {
        kind: 'nats',
        subject: s,
        payload: bytes.toString('base64'),
        headers: Object.fromEntries(headers.map((h) => [h.key, h.value.render(ctx, parsed)])),
        timeoutMs: c.timeoutMs ?? 3000,
      };
    },
  };
}

function postgres(config: ActionConfig, t: T): CompiledAction {
  const c = config.postgres!;
  const columns = c.columns.map((col, i) => ({ name: col.name, value: t(col.value, `columns[${i}].value`) }));
  return {
    kind: 'postgres',
    config,
    durable: true,
    prepare({ ctx, parsed }) {
      return {
        kind: 'postgres',
        values: columns.map((col) => {
          const v = col.value.renderValue(ctx, parsed);
          if (v === undefined || v === null) return null;
          if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
          const plain = toPlain(v);
          return typeof plain === 'object' ? JSON.stringify(plain) : plain;
        }),
      };
    },
  };
}

function timeseries(config: ActionConfig, t: T, version: string): CompiledAction {
  const c = config.timeseries!;
  const thing = t(c.thingName ?? '${clientid()}', 'thingName');
  const timestamp = c.timestamp ? t(c.timestamp, 'timestamp') : null;
  // Metric paths compile to SQL member access on the SELECT output document.
  const metricPaths = (c.metrics ?? []).map((m) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(m))
      throw E.TimeseriesActionMetric({ metric: m });
    return { name: m, sql: compileSql(`SELECT VALUE ${m} FROM '#'`, version) };
  });
  // Points are keyed by (thing, metric, ms): a second point in the same ms replaces the first. With an
  // explicit `timestamp` that is the contract (a reading written twice, e.g. replayed by a gateway, is stored
  // once). With the arrival time, two messages of one device in the same ms are two readings: each series'
  // arrival stamps are kept strictly increasing (the later one moves to the next free ms), so none is lost.
  const lastArrival = new BoundedLastStamp(100_000);
  return {
    kind: 'timeseries',
    config,
    durable: true,
    prepare({ ctx, parsed, output }) {
      const name = thing.render(ctx, parsed);
      if (!name || name === 'n/a') throw new ActionError('timeseries: thingName rendered empty', false);
      let ts = ctx.timestamp;
      const arrival = !timestamp;
      if (timestamp) {
        const v = timestamp.renderValue(ctx, parsed);
        const n =
          typeof v === 'number'
            ? v
            : typeof v === 'string'
              ? /^\d+$/.test(v)
                ? Number(v)
                : Date.parse(v)
              : NaN;
        if (!Number.isFinite(n))
          throw new ActionError(
            `timeseries: timestamp '${toText(v) ?? ''}' is not epoch ms or ISO-8601`,
            false,
          );
        ts = n;
      }
      const plain = toPlain(output);
      if (typeof plain !== 'object' || plain === null || Array.isArray(plain))
        throw new ActionError('timeseries: the SELECT output is not a JSON object', false);
      const points: Array<{ thing: string; metric: string; ts: number; value: number | string }> = [];
      const measure = (metric: string, v: unknown) => {
        const value =
          typeof v === 'number' && Number.isFinite(v)
            ? v
            : typeof v === 'string'
              ? v
              : typeof v === 'boolean'
                ? v
                  ? 1
                  : 0
                : undefined;
        if (value === undefined) return;
        const at = arrival ? lastArrival.next(`${name}\u0000${metric}`, ts) : ts;
        points.push({ thing: name, metric, ts: at, value });
      };
      if (metricPaths.length) {
        const doc = { json: true, value: output };
        for (const m of metricPaths) {
          const r = m.sql.evaluate(ctx, doc);
          if (r.matched) measure(m.name, toPlain(r.value));
        }
      } else for (const [k, v] of Object.entries(plain)) measure(k, v);
      return { kind: 'timeseries', points };
    },
  };
}

/** The bytes an action sends for a SELECT output. */
export function outputBytes(output: SqlValue): Buffer {
  if (Buffer.isBuffer(output)) return output;
  return Buffer.from(toJson(output), 'utf8');
}

/**
 * The last arrival stamp given per series, strictly increasing: `next(key, ms)` is `ms`, or one past the
 * last stamp of `key` when that is not earlier. Bounded: past `max` series the least recently stamped is
 * forgotten (a forgotten series can collide again only within the same ms as its last stamp).
 */
export class BoundedLastStamp {
  private readonly last = new Map<string, number>();
  constructor(private readonly max: number) {}

  next(key: string, ms: number): number {
    const prev = this.last.get(key);
    const at = prev !== undefined && prev >= ms ? prev + 1 : ms;
    if (prev !== undefined) this.last.delete(key);
    else if (this.last.size >= this.max) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, at);
    return at;
  }
}
