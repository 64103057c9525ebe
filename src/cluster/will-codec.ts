/**
 * The will of a connection that is up, as kept in its cluster_clients row (directory.ts): enough to publish
 * it from another node if this one dies. Authorized when it was set (as a stored delayed will is).
 */
import {
  decodeProperties,
  encodeProperties,
  type ConnectClaim,
  type PendingWill,
  type Principal,
} from '../mqtt/index.js';

interface WillJson {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties: string | null;
  delay: number;
  principal: Principal;
}

export function encodeClaimWill(claim: ConnectClaim): string | null {
  const w = claim.will;
  if (w === null) return null;
  const json: WillJson = {
    topic: w.topic,
    payload: w.payload.toString('base64'),
    qos: w.qos,
    retain: w.retain,
    properties: encodeProperties(w.properties),
    delay: w.delay,
    principal: claim.subject.principal,
  };
  return JSON.stringify(json);
}

/** The will as pending from now (its delay counted from now); null when the text does not decode. */
export function decodeClaimWill(clientId: string, text: string): PendingWill | null {
  let w: WillJson;
  try {
    w = JSON.parse(text) as WillJson;
  } catch {
    return null;
  }
  if (typeof w.topic !== 'string' || typeof w.payload !== 'string') return null;
  return {
    will: {
      topic: w.topic,
      payload: Buffer.from(w.payload, 'base64'),
      qos: w.qos,
      retain: w.retain,
      properties: decodeProperties(w.properties),
      delay: w.delay,
    },
    publisher: { clientId, principal: w.principal },
    subject: null,
    fireAt: Date.now() + Math.max(0, w.delay) * 1000,
  };
}
