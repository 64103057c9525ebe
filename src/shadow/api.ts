import type { AwsOperation } from '../api/index.js';
import { E, isThingsteadError, type ThingsteadError } from '../errors/index.js';
import type { DeviceRoute } from '../identity/index.js';
import { parseSimple, parseUpdate, SHADOW_MESSAGES, ShadowError } from './document.js';
import { checkNames } from './mqtt.js';
import type { ShadowService } from './service.js';

/**
 * The shadow operations of the HTTP data plane (signing name `iotdata`, reference §4): GetThingShadow,
 * UpdateThingShadow, DeleteThingShadow (`?name=` for a named shadow) and ListNamedShadowsForThing. Bodies
 * are the raw shadow documents of §8.2. Errors carry `x-amzn-ErrorType` (how the SDKs name them) and AWS's
 * shadow body `{"code": <int>, "message": ...}`.
 *
 * `shadowHttp` is the transport-free core, shared with the device HTTPS plane (mutual TLS).
 */

/** A ShadowError as the API error (AWS exception name in the header, numeric code in the body). */
export function toApiError(err: unknown): ThingsteadError {
  const e = err instanceof ShadowError ? err : new ShadowError(500, SHADOW_MESSAGES.internal);
  const extra = { code: e.code, timestamp: Math.floor(Date.now() / 1000) };
  switch (e.code) {
    case 400:
      return E.ShadowInvalid({ invalid: e.message }, extra);
    case 401:
      return E.ShadowUnauthorized(extra);
    case 403:
      return E.ShadowForbidden(extra);
    case 404:
      return E.ShadowNotFound({ notFound: e.message }, extra);
    case 409:
      return E.ShadowConflict(extra);
    case 413:
      return E.ShadowTooLarge(extra);
    case 415:
      return E.ShadowEncoding(extra);
    case 429:
      return E.ShadowThrottled(extra);
    default:
      return E.ShadowInternal(extra);
  }
}

export type ShadowHttpOp = 'get' | 'update' | 'delete';

/** One HTTP shadow request, transport-free: the JSON document answered, or a ShadowError thrown. */
export async function shadowHttp(
  shadows: ShadowService,
  op: ShadowHttpOp,
  thing: string,
  name: string,
  body: Buffer,
): Promise<Record<string, unknown>> {
  checkNames(thing, name);
  if (op === 'update') return shadows.update(thing, name, parseUpdate(body, shadows.limits));
  if (op === 'delete') return shadows.delete(thing, name, {});
  // GET has no body; `?sinceVersion=` is not in AWS's model: MQTT `get` carries the extension.
  return shadows.get(thing, name, body.length ? parseSimple(body) : {});
}

const json = (body: Record<string, unknown>) => ({
  raw: Buffer.from(JSON.stringify(body)),
  contentType: 'application/json',
});

export function shadowOperations(shadows: ShadowService): AwsOperation[] {
  const serve =
    (op: ShadowHttpOp): AwsOperation['handler'] =>
    async (request) => {
      const thing = request.params['thingName'] ?? '';
      const name = request.query['name'] ?? '';
      try {
        return json(
          await shadowHttp(shadows, op, thing, name, op === 'update' ? request.rawBody : Buffer.alloc(0)),
        );
      } catch (err) {
        throw toApiError(err);
      }
    };
  return [
    {
      name: 'GetThingShadow',
      service: 'iotdata',
      method: 'GET',
      path: '/things/{thingName}/shadow',
      readOnly: true,
      handler: serve('get'),
    },
    {
      name: 'UpdateThingShadow',
      service: 'iotdata',
      method: 'POST',
      path: '/things/{thingName}/shadow',
      rawBody: true,
      handler: serve('update'),
    },
    {
      name: 'DeleteThingShadow',
      service: 'iotdata',
      method: 'DELETE',
      path: '/things/{thingName}/shadow',
      handler: serve('delete'),
    },
    {
      name: 'ListNamedShadowsForThing',
      service: 'iotdata',
      method: 'GET',
      path: '/api/things/shadow/ListNamedShadowsForThing/{thingName}',
      readOnly: true,
      handler: async (request) => {
        const thing = request.params['thingName'] ?? '';
        const pageSize =
          request.query['pageSize'] === undefined ? undefined : Number(request.query['pageSize']);
        if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100))
          throw E.ValidationError({
            violation: `Value '${request.query['pageSize']}' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 100`,
          });
        try {
          checkNames(thing, '');
          const page = await shadows.listNamed(thing, {
            ...(request.query['nextToken'] ? { nextToken: request.query['nextToken'] } : {}),
            ...(pageSize !== undefined ? { pageSize } : {}),
          });
          return { ...page, timestamp: Math.floor(Date.now() / 1000) };
        } catch (err) {
          throw toApiError(err);
        }
      },
    },
  ];
}

const SHADOW_OPS = { GET: 'get', POST: 'update', DELETE: 'delete' } as const;
const SHADOW_ACTIONS = {
  get: 'iot:GetThingShadow',
  update: 'iot:UpdateThingShadow',
  delete: 'iot:DeleteThingShadow',
} as const;

/**
 * The shadow routes of the device HTTPS plane (mutual TLS): GET, POST and DELETE
 * `/things/{thing}/shadow[?name=]`, each authorized by iot:Get/Update/DeleteThingShadow on `thing/{thing}`
 * (named: `thing/{thing}/{name}`) through the device's policies (reference §9.2), answered as the SigV4
 * data plane answers them (reference §4); a refusal is 403 ForbiddenException and touches nothing.
 */
export function shadowDeviceRoute(shadows: ShadowService, arnPrefix: string): DeviceRoute {
  return async (req, _res, ctx) => {
    const m = /^\/things\/([^/]+)\/shadow$/.exec(ctx.url.pathname);
    const op = SHADOW_OPS[req.method as keyof typeof SHADOW_OPS];
    if (!m || !op) return false;
    try {
      let thing: string;
      try {
        thing = decodeURIComponent(m[1]!);
      } catch {
        throw E.MalformedPathSegment({ segment: m[1]! });
      }
      const name = ctx.url.searchParams.get('name') ?? '';
      if (!ctx.authorize(SHADOW_ACTIONS[op], `${arnPrefix}:thing/${thing}${name ? `/${name}` : ''}`))
        throw new ShadowError(403, 'Forbidden');
      const body = op === 'update' ? ctx.body : Buffer.alloc(0);
      ctx.send(200, await shadowHttp(shadows, op, thing, name, body));
    } catch (err) {
      const e = isThingsteadError(err) ? err : toApiError(err);
      ctx.send(e.spec.status, { message: e.message, ...e.extra }, { 'x-amzn-ErrorType': e.spec.awsName });
    }
    return true;
  };
}
