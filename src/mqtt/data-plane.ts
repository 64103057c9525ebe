/**
 * The broker's part of the AWS IoT data plane (reference §4, signing name `iotdata`, alias
 * `iotdevicegateway`): Publish, GetRetainedMessage and ListRetainedMessages, served by the API context's
 * dispatcher (SigV4, AWS error shapes) as operations of the broker's context module. Shadow operations are
 * the shadow context's.
 *
 * Contract: Publish is held to a device PUBLISH's limits (data-plane-publish.ts) and goes through
 * `broker.publishDurably` when it is QoS 1 or retained, so its 200 comes after the store write, as an MQTT
 * PUBACK does. The caller is an access key (admin keys publish; read-only keys may only read retained
 * messages); a rule sees it as `principal()`.
 */
import type { AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import { parseHttpPublish, type HttpPublishLimits } from './data-plane-publish.js';
import type { Broker, PublishProperties } from './types.js';

/** ListRetainedMessages page size bounds (reference §11: maxResults 1..200). */
const MAX_RESULTS = 200;
const TOKEN_PREFIX = 'retained:';

/** The base64 of a JSON array of single-pair objects, as the `userProperties` blob of GetRetainedMessage. */
function encodeUserProperties(props: PublishProperties['userProperties']): string | undefined {
  if (!props) return undefined;
  const pairs: Array<Record<string, string>> = [];
  for (const [k, v] of Object.entries(props))
    for (const one of Array.isArray(v) ? v : [v]) pairs.push({ [k]: one });
  return pairs.length > 0 ? Buffer.from(JSON.stringify(pairs)).toString('base64') : undefined;
}

const encodeToken = (after: number) => Buffer.from(`${TOKEN_PREFIX}${after}`).toString('base64url');

function decodeToken(token: string): number {
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  const m = /^retained:(\d{1,15})$/.exec(text);
  if (!m) throw E.DataPlaneNextToken({ token });
  return Number(m[1]);
}

/**
 * The data-plane operations of the broker.
 * @example const ops = dataPlaneOperations(broker, config.limits); // [Publish, GetRetainedMessage, ListRetainedMessages]
 */
export function dataPlaneOperations(broker: Broker, limits: HttpPublishLimits): AwsOperation[] {
  return [
    {
      name: 'Publish',
      service: 'iotdata',
      method: 'POST',
      path: '/topics/{topic}',
      rawBody: true,
      async handler(request) {
        // Metered by the metering context's operation wrapper (src/metering/api.ts) once this returns.
        const { message } = parseHttpPublish(
          {
            topic: request.params.topic!,
            query: request.query,
            headers: request.headers,
            payload: request.rawBody,
          },
          limits,
        );
        const publisher = {
          clientId: '',
          principal: { kind: 'accessKey' as const, id: request.caller.accessKeyId },
        };
        if (message.qos > 0 || message.retain) await broker.publishDurably(message, publisher);
        else broker.publish(message, publisher);
        return {};
      },
    },
    {
      name: 'GetRetainedMessage',
      service: 'iotdata',
      method: 'GET',
      path: '/retainedMessage/{topic}',
      readOnly: true,
      async handler(request) {
        const topic = request.params.topic!;
        const m = broker.retained(topic);
        if (!m) throw E.RetainedMessageNotFound({ topic });
        const userProperties = encodeUserProperties(m.properties?.userProperties);
        return {
          topic: m.topic,
          payload: m.payload.toString('base64'),
          qos: m.qos,
          lastModifiedTime: m.lastModifiedTime,
          ...(userProperties !== undefined ? { userProperties } : {}),
        };
      },
    },
    {
      name: 'ListRetainedMessages',
      service: 'iotdata',
      method: 'GET',
      path: '/retainedMessage',
      readOnly: true,
      async handler(request) {
        const { maxResults, nextToken } = request.query;
        let limit = MAX_RESULTS;
        if (maxResults !== undefined) {
          if (!/^\d+$/.test(maxResults) || Number(maxResults) < 1 || Number(maxResults) > MAX_RESULTS)
            throw E.MemberConstraint({
              value: maxResults,
              member: 'maxResults',
              constraint: `Member must have value between 1 and ${MAX_RESULTS}`,
            });
          limit = Number(maxResults);
        }
        const after = nextToken !== undefined && nextToken !== '' ? decodeToken(nextToken) : 0;
        const page = broker.retainedPage(after, limit);
        return {
          retainedTopics: page.messages.map((m) => ({
            topic: m.topic,
            payloadSize: m.payload.length,
            qos: m.qos,
            lastModifiedTime: m.lastModifiedTime,
          })),
          ...(page.next !== null ? { nextToken: encodeToken(page.next) } : {}),
        };
      },
    },
  ];
}
