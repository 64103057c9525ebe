import type { Broker } from '../../mqtt/index.js';
import { ActionError, type ActionRequest } from '../actions.js';

/**
 * Republish hop count per payload Buffer (the broker shares payload Buffers instead of copying them, so the
 * engine can recognise its own republished messages and stop a rule that feeds itself).
 */
export const REPUBLISH_DEPTH = new WeakMap<Buffer, number>();

/** Publish as the platform (no publisher: a republish is never a reserved-topic service request). */
export function republish(
  broker: Broker | null,
  r: Extract<ActionRequest, { kind: 'republish' }>,
  depth: number,
): void {
  if (!broker) throw new ActionError('broker is not available', true);
  const userProperties = r.userProperties;
  // An exactly-sized, unpooled Buffer: the broker keeps it as is (no copy), so the depth mark survives.
  const decoded = Buffer.from(r.payload, 'base64');
  const payload = Buffer.allocUnsafeSlow(decoded.length);
  decoded.copy(payload);
  REPUBLISH_DEPTH.set(payload, depth + 1);
  broker.publish(
    {
      topic: r.topic,
      payload,
      qos: r.qos,
      retain: false,
      properties: {
        ...(r.contentType ? { contentType: r.contentType } : {}),
        ...(r.responseTopic ? { responseTopic: r.responseTopic } : {}),
        ...(userProperties ? { userProperties } : {}),
      },
    },
    null,
  );
}
