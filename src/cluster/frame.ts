/**
 * A routed message on the wire between nodes: one NATS message per publish. Layout (big-endian):
 * version (1 byte, 1), flags (1: qos bits 0-1, retain bit 2), origin node seq (u32 high, u32 low: a
 * safe integer), header length (u32), header JSON, payload bytes. The header holds what the receiving
 * node needs to deliver exactly as the publishing node would: topic, the publishing client id (No Local),
 * the absolute expiry, the v5 properties, the publishing node (to drop duplicates of one message that
 * match several of a node's subscriptions), and the share groups the publishing node served itself.
 */
import { decodeProperties, encodeProperties, type Routed } from '../mqtt/index.js';

export interface WireMessage {
  readonly node: string;
  readonly seq: number;
  readonly message: Routed;
  /** Share groups (`group\u0000filter`) the publishing node served itself. */
  readonly served: readonly string[] | null;
}

interface Header {
  /** topic */
  t: string;
  /** origin node id */
  n: string;
  /** publishing client id */
  o?: string;
  /** absolute expiry, epoch ms */
  e?: number;
  /** properties (store encoding) */
  p?: string;
  /** share groups served by the publishing node */
  s?: string[];
}

export function encodeFrame(
  node: string,
  seq: number,
  m: Routed,
  served: readonly string[] | null = null,
): Buffer {
  const h: Header = { t: m.topic, n: node };
  if (served !== null) h.s = [...served];
  if (m.origin !== null) h.o = m.origin;
  if (m.expiresAt !== null) h.e = m.expiresAt;
  const props = encodeProperties(m.properties);
  if (props !== null) h.p = props;
  const header = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.allocUnsafe(14 + header.length + m.payload.length);
  out[0] = 1;
  out[1] = (m.qos & 3) | (m.retain ? 4 : 0);
  out.writeUInt32BE(Math.floor(seq / 2 ** 32), 2);
  out.writeUInt32BE(seq >>> 0, 6);
  out.writeUInt32BE(header.length, 10);
  header.copy(out, 14);
  m.payload.copy(out, 14 + header.length);
  return out;
}

/** Decode a frame; null when it is not one (counted by the caller). The payload is a view into `data`. */
export function decodeFrame(data: Uint8Array): WireMessage | null {
  if (data.length < 14 || data[0] !== 1) return null;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const flags = buf[1]!;
  const seq = buf.readUInt32BE(2) * 2 ** 32 + buf.readUInt32BE(6);
  const hlen = buf.readUInt32BE(10);
  if (14 + hlen > buf.length) return null;
  let h: Header;
  try {
    h = JSON.parse(buf.toString('utf8', 14, 14 + hlen)) as Header;
  } catch {
    return null;
  }
  if (typeof h.t !== 'string' || typeof h.n !== 'string') return null;
  const bits = flags & 3;
  if (bits === 3) return null;
  const qos = bits as 0 | 1 | 2;
  return {
    node: h.n,
    seq,
    served: Array.isArray(h.s) ? h.s.filter((x): x is string => typeof x === 'string') : null,
    message: {
      topic: h.t,
      payload: buf.subarray(14 + hlen),
      qos,
      retain: (flags & 4) !== 0,
      properties: h.p !== undefined ? decodeProperties(h.p) : undefined,
      expiresAt: typeof h.e === 'number' ? h.e : null,
      origin: typeof h.o === 'string' ? h.o : null,
      publisher: null,
      ingress: performance.now(),
    },
  };
}
