import type { ServiceRequest } from '../mqtt/index.js';
import {
  errorResponse,
  parseSimple,
  parseUpdate,
  salvageClientToken,
  SHADOW_MESSAGES,
  ShadowError,
} from './document.js';
import { shadowTopic, type ShadowOp, type ShadowService } from './service.js';

/**
 * Shadow requests over MQTT (reference §8.2): the reserved-topic filters the broker hands to the shadow
 * service and the request -> answer mapping. A request was authorized (iot:Publish on its topic) before it
 * got here; answers are published by the platform on `<prefix>/<op>/accepted|rejected` and reach whoever
 * subscribed and may iot:Receive them.
 */

export const SHADOW_FILTERS = (['get', 'update', 'delete'] as const).flatMap((op) => [
  `$aws/things/+/shadow/${op}`,
  `$aws/things/+/shadow/name/+/${op}`,
]);

/** Thing, shadow name ('' classic) and operation of a request topic, or null when it is not one. */
export function parseShadowTopic(topic: string): { thing: string; name: string; op: ShadowOp } | null {
  const levels = topic.split('/');
  if (levels[0] !== '$aws' || levels[1] !== 'things' || levels[3] !== 'shadow') return null;
  const thing = levels[2]!;
  if (levels.length === 5) {
    const op = levels[4] as ShadowOp;
    return op === 'get' || op === 'update' || op === 'delete' ? { thing, name: '', op } : null;
  }
  if (levels.length === 7 && levels[4] === 'name') {
    const op = levels[6] as ShadowOp;
    return op === 'get' || op === 'update' || op === 'delete' ? { thing, name: levels[5]!, op } : null;
  }
  return null;
}

const SHADOW_NAME = /^[$a-zA-Z0-9:_-]{1,64}$/;
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

/** Refuse names AWS refuses (400), so nothing odd reaches the store. */
export function checkNames(thing: string, name: string): void {
  if (!THING_NAME.test(thing) || (name !== '' && !SHADOW_NAME.test(name)))
    throw new ShadowError(400, SHADOW_MESSAGES.invalidNode);
}

/** The broker service body: answer one MQTT shadow request. */
export function shadowRequestHandler(
  shadows: ShadowService,
  publish: (topic: string, body: Record<string, unknown>) => void,
) {
  const reject = (request: ServiceRequest, err: ShadowError) => {
    const target = parseShadowTopic(request.topic);
    if (!target) return;
    publish(
      `${shadowTopic(target.thing, target.name)}/${target.op}/rejected`,
      errorResponse(err, Math.floor(Date.now() / 1000), salvageClientToken(request.payload)),
    );
  };
  return {
    /** The queue refused the request: answer 429 so the device backs off instead of waiting. */
    onDrop(request: ServiceRequest): void {
      reject(request, new ShadowError(429, SHADOW_MESSAGES.tooManyRequests));
    },
    async handle(request: ServiceRequest): Promise<void> {
      const target = parseShadowTopic(request.topic);
      if (!target) return;
      const clientId = request.publisher.clientId;
      if (!shadows.admit(clientId))
        return reject(request, new ShadowError(429, SHADOW_MESSAGES.tooManyRequests));
      try {
        checkNames(target.thing, target.name);
        const { thing, name, op } = target;
        if (op === 'update') await shadows.update(thing, name, parseUpdate(request.payload, shadows.limits));
        else if (op === 'delete') await shadows.delete(thing, name, parseSimple(request.payload));
        else {
          const get = parseSimple(request.payload);
          publish(`${shadowTopic(thing, name)}/get/accepted`, await shadows.get(thing, name, get));
        }
      } catch (err) {
        reject(request, err instanceof ShadowError ? err : new ShadowError(500, SHADOW_MESSAGES.internal));
      } finally {
        shadows.release(clientId);
      }
    },
  };
}
