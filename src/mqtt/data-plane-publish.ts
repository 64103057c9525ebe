/**
 * An HTTP Publish (reference §4: `POST /topics/{topic}`) read into a broker Message: the one parser for the
 * SigV4 data plane (data-plane.ts) and the device HTTPS plane (identity's auth-hooks-https.ts), so both take
 * the same query parameters and headers with the same checks. Pure: no I/O, no authorization.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { E } from '../errors/index.js';
import { publishBytes } from './codec.js';
import { checkTopicName, type TopicLimits, type TopicProblem } from './topics.js';
import { isBrokerOwned } from './services.js';
import type { Message, PublishProperties } from './types.js';

/** The limits an HTTP publish is held to (a subset of config.limits). */
export interface HttpPublishLimits extends TopicLimits {
  readonly maxPayloadBytes: number;
}

/** What a Publish request carries besides its topic: decoded query parameters, headers, the whole body. */
export interface HttpPublishRequest {
  /** The topic, percent-decoded (one path segment on the wire, `/` as %2F). */
  readonly topic: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly headers: IncomingHttpHeaders;
  /** The whole request body; owned by the returned message. */
  readonly payload: Buffer;
}

/** A parsed HTTP publish: the message for the broker and its metered size. */
export interface HttpPublish {
  readonly message: Message;
  /**
   * The size an MQTT PUBLISH of this message is metered at (topic + payload + MQTT 5 properties, the
   * codec's publishBytes), so an HTTP publish counts as the same message in 5 KB blocks (src/metering).
   */
  readonly bytes: number;
}

const PROBLEMS: Record<TopicProblem, string> = {
  empty: 'the topic is empty',
  wildcard: 'a topic name cannot contain + or #',
  nul: 'a topic name cannot contain U+0000',
  too_long: 'the topic is longer than limits.maxTopicBytes',
  too_many_levels: 'the topic has more levels than limits.maxTopicLevels',
  bad_filter: 'not a topic name',
};

const U32_MAX = 4_294_967_295;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function integer(value: string, member: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value))
    throw E.MemberConstraint({ value, member, constraint: 'Member must be an integer' });
  const n = Number(value);
  if (n < min)
    throw E.MemberConstraint({
      value,
      member,
      constraint: `Member must have value greater than or equal to ${min}`,
    });
  if (n > max)
    throw E.MemberConstraint({
      value,
      member,
      constraint: `Member must have value less than or equal to ${max}`,
    });
  return n;
}

function base64(value: string, name: string): Buffer {
  const v = value.trim();
  if (!BASE64.test(v)) throw E.DataPlaneHeader({ header: name, reason: 'not base64' });
  return Buffer.from(v, 'base64');
}

/**
 * `x-amz-mqtt5-user-properties`: base64 of a JSON array of single-pair objects, `[{"k":"v"},{"k":"w"}]`
 * (reference §4); a repeated key keeps every value, in order.
 */
function userProperties(value: string): Record<string, string | string[]> {
  const name = 'x-amz-mqtt5-user-properties';
  let parsed: unknown;
  try {
    parsed = JSON.parse(base64(value, name).toString('utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) throw E.DataPlaneHeader({ header: name, reason: 'not JSON' });
    throw err;
  }
  if (!Array.isArray(parsed))
    throw E.DataPlaneHeader({ header: name, reason: 'not a JSON array of single-pair objects' });
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const item of parsed) {
    const entries =
      typeof item === 'object' && item !== null && !Array.isArray(item) ? Object.entries(item) : [];
    const pair = entries[0];
    if (entries.length !== 1 || typeof pair![1] !== 'string')
      throw E.DataPlaneHeader({
        header: name,
        reason: 'each element must be an object with one string member',
      });
    const [k, v] = pair as [string, string];
    const had = out[k];
    out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return { ...out };
}

/**
 * Read a Publish request (reference §4): `?qos` 0|1 (default 0), `?retain` (default false),
 * `?contentType`, `?responseTopic`, `?messageExpiry` (seconds), headers `x-amz-mqtt5-user-properties`,
 * `x-amz-mqtt5-payload-format-indicator` (UNSPECIFIED_BYTES | UTF8_DATA), `x-amz-mqtt5-correlation-data`.
 * Checks the limits of an MQTT PUBLISH (payload size, topic bytes and levels, no wildcards) and refuses the
 * broker-owned `$aws/events/` topics. Throws ThingsteadError: InvalidRequestException (400) for bad input,
 * RequestEntityTooLargeException (413) for the payload, UnauthorizedException (401) for a broker-owned topic.
 * An empty payload with retain clears the topic's retained message (the broker's rule [MQTT-3.3.1-10]).
 * @example const { message, bytes } = parseHttpPublish({ topic, query, headers, payload }, config.limits);
 */
export function parseHttpPublish(request: HttpPublishRequest, limits: HttpPublishLimits): HttpPublish {
  const { topic, query, headers, payload } = request;
  const problem = checkTopicName(topic, limits);
  if (problem !== null) throw E.DataPlaneTopic({ topic: JSON.stringify(topic), problem: PROBLEMS[problem] });
  if (isBrokerOwned(topic)) throw E.DataPlaneTopicReserved({ topic });
  if (payload.length > limits.maxPayloadBytes)
    throw E.DataPlanePayloadTooLarge({ limit: limits.maxPayloadBytes });

  const qos = query.qos === undefined ? 0 : integer(query.qos, 'qos', 0, 1);
  let retain = false;
  if (query.retain !== undefined) {
    if (query.retain !== 'true' && query.retain !== 'false')
      throw E.MemberConstraint({
        value: query.retain,
        member: 'retain',
        constraint: 'Member must be true or false',
      });
    retain = query.retain === 'true';
  }

  const properties: PublishProperties = {};
  if (query.contentType !== undefined) properties.contentType = query.contentType;
  if (query.responseTopic !== undefined) {
    const why = checkTopicName(query.responseTopic, limits);
    if (why !== null)
      throw E.MemberConstraint({
        value: query.responseTopic,
        member: 'responseTopic',
        constraint: PROBLEMS[why],
      });
    properties.responseTopic = query.responseTopic;
  }
  if (query.messageExpiry !== undefined)
    properties.messageExpiryInterval = integer(query.messageExpiry, 'messageExpiry', 0, U32_MAX);
  const users = header(headers, 'x-amz-mqtt5-user-properties');
  if (users !== undefined && users !== '') properties.userProperties = userProperties(users);
  const format = header(headers, 'x-amz-mqtt5-payload-format-indicator');
  if (format !== undefined) {
    if (format !== 'UNSPECIFIED_BYTES' && format !== 'UTF8_DATA')
      throw E.MemberConstraint({
        value: format,
        member: 'payloadFormatIndicator',
        constraint: 'Member must satisfy enum value set: [UNSPECIFIED_BYTES, UTF8_DATA]',
      });
    properties.payloadFormatIndicator = format === 'UTF8_DATA';
    // [MQTT-3.3.2-4] the receiver may check a payload declared UTF-8; the broker checks it on MQTT (0x99).
    if (format === 'UTF8_DATA' && !isUtf8(payload)) throw E.DataPlanePayloadNotUtf8();
  }
  const correlation = header(headers, 'x-amz-mqtt5-correlation-data');
  if (correlation !== undefined && correlation !== '') {
    const data = base64(correlation, 'x-amz-mqtt5-correlation-data');
    if (data.length > 65_535)
      throw E.DataPlaneHeader({ header: 'x-amz-mqtt5-correlation-data', reason: 'longer than 65535 bytes' });
    properties.correlationData = data;
  }
  const carried = Object.keys(properties).length > 0 ? properties : undefined;
  return {
    message: { topic, payload, qos: qos === 1 ? 1 : 0, retain, properties: carried },
    bytes: publishBytes(topic, payload, carried),
  };
}
