/**
 * Outbound PUBLISH encoding on top of mqtt-packet (the general codec; nothing here re-implements it).
 * Adds the per-delivery parts: remaining Message Expiry Interval [MQTT-3.3.2-6], Subscription Identifiers
 * [MQTT-3.3.4-3], and server-to-client Topic Aliases [MQTT-3.3.2-7..12].
 */
import { isUtf8 } from 'node:buffer';
import mqttPacket from 'mqtt-packet';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { PublishProperties } from './types.js';

export interface OutboundPublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly dup: boolean;
  readonly packetId: number;
  readonly properties: PublishProperties | undefined;
  readonly expiresAt: number | null;
  readonly subIds: number[] | null;
}

/** The parts of a connection the encoder reads (alias state is updated in place). */
export interface EncodeTarget {
  readonly version: 3 | 4 | 5;
  readonly aliasMaxOut: number;
  aliasesOut: Map<string, number> | null;
}

type V5Props = NonNullable<IPublishPacket['properties']>;

/**
 * Measured fast path for the hottest packet: a PUBLISH without properties (3.1.1, or v5 with an empty
 * property block). Profiling showed mqtt-packet's generate() (an EventEmitter per packet plus a concat)
 * at ~10% of CPU under fan-in load. Everything else goes through mqtt-packet.
 * Layout [MQTT-3.3.1]: fixed header, remaining length, topic (2-byte length + UTF-8), packet id if QoS > 0,
 * v5 property length 0, payload.
 */
export function encodePublishFast(
  topic: string,
  payload: Buffer,
  qos: 0 | 1 | 2,
  retain: boolean,
  dup: boolean,
  packetId: number,
  v5: boolean,
): Buffer {
  const tlen = Buffer.byteLength(topic);
  const rem = 2 + tlen + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length;
  const hlen = rem < 128 ? 2 : rem < 16_384 ? 3 : rem < 2_097_152 ? 4 : 5;
  const buf = Buffer.allocUnsafe(hlen + rem);
  buf[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let o = 1;
  let x = rem;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 128;
    buf[o++] = b;
  } while (x > 0);
  buf.writeUInt16BE(tlen, o);
  o += 2;
  o += buf.write(topic, o, 'utf8');
  if (qos > 0) {
    buf.writeUInt16BE(packetId, o);
    o += 2;
  }
  if (v5) buf[o++] = 0;
  payload.copy(buf, o);
  return buf;
}

/** Acknowledgements with reason Success and no properties: 4 bytes in 3.1.1 and v5 [MQTT-3.4.2-1]. */
export function encodeAck(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf[0] = type === 'puback' ? 0x40 : type === 'pubrec' ? 0x50 : type === 'pubrel' ? 0x62 : 0x70;
  buf[1] = 2;
  buf.writeUInt16BE(packetId, 2);
  return buf;
}

export function encodePublish(target: EncodeTarget, p: OutboundPublish): Buffer {
  if (
    target.version !== 5 ||
    (p.properties === undefined && p.expiresAt === null && p.subIds === null && target.aliasMaxOut === 0)
  ) {
    return encodePublishFast(p.topic, p.payload, p.qos, p.retain, p.dup, p.packetId, target.version === 5);
  }
  const packet: IPublishPacket = {
    cmd: 'publish',
    topic: p.topic,
    payload: p.payload,
    qos: p.qos,
    dup: p.dup,
    retain: p.retain,
  };
  if (p.qos > 0) packet.messageId = p.packetId;
  if (target.version === 5) {
    let props: V5Props | undefined = p.properties ? { ...(p.properties as V5Props) } : undefined;
    if (p.expiresAt !== null) {
      props ??= {};
      props.messageExpiryInterval = Math.max(1, Math.ceil((p.expiresAt - Date.now()) / 1000));
    }
    if (p.subIds) {
      props ??= {};
      props.subscriptionIdentifier = p.subIds.length === 1 ? p.subIds[0]! : p.subIds;
    }
    if (target.aliasMaxOut > 0) {
      const aliases = (target.aliasesOut ??= new Map());
      const alias = aliases.get(p.topic);
      props ??= {};
      if (alias !== undefined) {
        packet.topic = '';
        props.topicAlias = alias;
      } else if (aliases.size < target.aliasMaxOut) {
        const next = aliases.size + 1;
        aliases.set(p.topic, next);
        props.topicAlias = next;
      }
    }
    if (props) packet.properties = props;
  }
  return mqttPacket.generate(packet, { protocolVersion: target.version });
}

/**
 * Measured fast path for parsing the hottest inbound packet: PUBLISH in 3.1.1, or in v5 with an empty
 * property block. mqtt-packet's parser (a BufferList, debug() calls and copies per packet) cost ~30% of
 * CPU under fan-in load. Returns null when the packet must go through mqtt-packet (v5 with properties),
 * 'malformed' for a violation the fast path detects ([MQTT-3.3.1-4] QoS 3, truncated fields).
 * The payload is a view into `buf` (no copy): whoever keeps it beyond the call must own a copy if the
 * backing chunk is large (see `ownPayload`).
 */
export function parsePublishFast(
  buf: Buffer,
  start: number,
  headerLen: number,
  end: number,
  v5: boolean,
): IPublishPacket | null | 'malformed' {
  const b0 = buf[start]!;
  const qos = (b0 >> 1) & 3;
  if (qos === 3) return 'malformed';
  let o = start + headerLen;
  if (o + 2 > end) return 'malformed';
  const tlen = buf.readUInt16BE(o);
  o += 2;
  if (o + tlen > end) return 'malformed';
  const topic = buf.toString('utf8', o, o + tlen);
  // [MQTT-1.5.4-1] ill-formed UTF-8 (decoding replaced it) is malformed.
  if (topic.includes('\ufffd') && !isUtf8(buf.subarray(o, o + tlen))) return 'malformed';
  o += tlen;
  let messageId: number | undefined;
  if (qos > 0) {
    if (o + 2 > end) return 'malformed';
    messageId = buf.readUInt16BE(o);
    // [MQTT-2.2.1-3] a QoS > 0 PUBLISH needs a non-zero packet id.
    if (messageId === 0) return 'malformed';
    o += 2;
  }
  if (v5) {
    if (o >= end) return 'malformed';
    if (buf[o] !== 0) return null;
    o += 1;
  }
  const packet: IPublishPacket = {
    cmd: 'publish',
    topic,
    payload: buf.subarray(o, end),
    qos: qos as 0 | 1 | 2,
    dup: (b0 & 8) !== 0,
    retain: (b0 & 1) !== 0,
  };
  if (messageId !== undefined) packet.messageId = messageId;
  return packet;
}

/** A payload to keep beyond the read turn: copied when it is a small view of a large chunk. */
export function ownPayload(payload: Buffer): Buffer {
  return payload.buffer.byteLength > 2 * payload.length + 1024 ? Buffer.from(payload) : payload;
}

/**
 * mqtt-packet parsers shared by every connection (one per protocol family), so an idle connection holds
 * no parser of its own (a BufferList stream per parser would cost ~2 KB per connection).
 * Safe because each call hands over exactly one complete frame (the connection frames the stream), so the
 * parser is back in its initial state when the call returns, and packets are handled after it returns.
 */
export class FrameParser {
  private parser!: ReturnType<typeof mqttPacket.parser>;
  private packet: Packet | null = null;
  private error: Error | null = null;

  constructor(private readonly protocolVersion: 4 | 5) {
    this.fresh();
  }

  /** A new mqtt-packet parser: after an error its internal state is not reliably reusable. */
  private fresh(): void {
    this.parser = mqttPacket.parser({ protocolVersion: this.protocolVersion });
    this.parser.on('packet', (p: Packet) => {
      this.packet = p;
    });
    this.parser.on('error', (err: Error) => {
      this.error ??= err;
    });
  }

  /** Parse one complete frame into a packet, or return the codec's error. */
  parse(frame: Buffer): Packet | Error {
    this.packet = null;
    this.error = null;
    this.parser.parse(frame);
    const { packet, error } = this;
    this.packet = null;
    this.error = null;
    if (error || !packet) {
      // Never leave partial or error state behind for the next connection.
      this.fresh();
      return error ?? new Error('incomplete packet');
    }
    return packet;
  }
}

export const PARSER_V4 = new FrameParser(4);
export const PARSER_V5 = new FrameParser(5);
