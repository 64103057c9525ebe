/**
 * Pre-encoded MQTT 3.1.1 packets and a minimal frame scanner for the load generator.
 *
 * The generator never runs a full codec on the hot path: CONNECT/SUBSCRIBE come from mqtt-packet's
 * `generate` once, PUBLISH frames are laid out by hand into reusable rings, and inbound bytes are split
 * into frames by reading only the fixed header (type nibble + remaining length varint).
 */
import mqttPacket from 'mqtt-packet';

export const PUBLISH = 3;
export const PUBACK = 4;
export const CONNACK = 2;
export const SUBACK = 9;

export function connectPacket(clientId: string, keepalive = 0): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive,
  });
}

export function subscribePacket(filter: string, qos: 0 | 1, messageId = 1): Buffer {
  return mqttPacket.generate({
    cmd: 'subscribe',
    messageId,
    subscriptions: [{ topic: filter, qos }],
  });
}

function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarint(buf: Buffer, offset: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[offset++] = byte;
  } while (n > 0);
  return offset;
}

/** Layout of one hand-encoded PUBLISH frame (3.1.1, no properties). */
export interface PublishLayout {
  readonly frameBytes: number;
  /** Offset of the packet identifier inside the frame (QoS 1), or -1. */
  readonly idOffset: number;
  /** Offset of the payload inside the frame. */
  readonly payloadOffset: number;
}

/** Encode one PUBLISH frame into `buf` at `offset`; returns its layout. */
export function writePublish(
  buf: Buffer,
  offset: number,
  topic: string,
  payload: Buffer,
  qos: 0 | 1,
  messageId: number,
): PublishLayout {
  const topicBytes = Buffer.byteLength(topic);
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payload.length;
  const start = offset;
  buf[offset++] = 0x30 | (qos << 1);
  offset = writeVarint(buf, offset, remaining);
  buf.writeUInt16BE(topicBytes, offset);
  offset += 2;
  offset += buf.write(topic, offset, 'utf8');
  let idOffset = -1;
  if (qos > 0) {
    idOffset = offset - start;
    buf.writeUInt16BE(messageId, offset);
    offset += 2;
  }
  const payloadOffset = offset - start;
  payload.copy(buf, offset);
  offset += payload.length;
  return { frameBytes: offset - start, idOffset, payloadOffset };
}

export function publishFrameBytes(topic: string, payloadBytes: number, qos: 0 | 1): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + payloadBytes;
  return 1 + varintLength(remaining) + remaining;
}

/**
 * A ring of `count` consecutive PUBLISH frames on one topic. For QoS 1 the frames carry packet ids
 * 1..count in order, so sending frames [i, j) is a zero-copy `subarray` of the ring.
 */
export interface PublishRing {
  readonly buf: Buffer;
  readonly count: number;
  readonly frameBytes: number;
  readonly payloadOffset: number;
}

export function publishRing(topic: string, payload: Buffer, qos: 0 | 1, count: number): PublishRing {
  const frameBytes = publishFrameBytes(topic, payload.length, qos);
  const buf = Buffer.allocUnsafe(frameBytes * count);
  let layout: PublishLayout | undefined;
  for (let i = 0; i < count; i++) layout = writePublish(buf, i * frameBytes, topic, payload, qos, i + 1);
  return { buf, count, frameBytes, payloadOffset: layout?.payloadOffset ?? 0 };
}

/**
 * Split a byte stream into MQTT frames, keeping a partial frame between chunks.
 * `onFrame(buf, start, bodyStart, end)` gets the frame's first byte at `start`, its variable header at
 * `bodyStart` and its end; the buffer is only valid during the call.
 */
export class FrameScanner {
  private pending: Buffer | null = null;

  constructor(
    private readonly onFrame: (buf: Buffer, start: number, bodyStart: number, end: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      // Fixed header: 1 type byte + 1..4 bytes of remaining length.
      let p = pos + 1;
      let remaining = 0;
      let mult = 1;
      let complete = false;
      while (p < len && p < pos + 5) {
        const b = buf[p++]!;
        remaining += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (p >= pos + 5) throw new Error('malformed remaining length from broker');
        break;
      }
      const end = p + remaining;
      if (end > len) break;
      this.onFrame(buf, pos, p, end);
      pos = end;
    }
    if (pos < len) this.pending = Buffer.from(buf.subarray(pos));
  }
}

/** Microseconds on the monotonic clock, comparable across threads of one process. */
export function nowMicros(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}
