/**
 * Outbound PUBLISH encoding on top of mqtt-packet (the general codec; nothing here re-implements it).
 * Adds the per-delivery parts: remaining Message Expiry Interval [MQTT-3.3.2-6], Subscription Identifiers
 * [MQTT-3.3.4-3], and server-to-client Topic Aliases [MQTT-3.3.2-7..12].
 */
import { isUtf8 } from 'node:buffer';
import mqttPacket from 'mqtt-packet';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { PublishProperties } from './types.js';
import { RC } from './reason-codes.js';

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

/**
 * A PUBLISH's metered size as AWS IoT Core meters it (pricing "additional metering details"): topic and
 * payload bytes, plus for MQTT 5 the user properties, response topic, correlation data and content type.
 * Used by usage metering (src/metering); allocation-free for messages without properties.
 */
export function publishBytes(
  topic: string,
  payload: Buffer,
  properties: PublishProperties | undefined,
): number {
  let n = Buffer.byteLength(topic) + payload.length;
  if (properties !== undefined) {
    if (properties.responseTopic !== undefined) n += Buffer.byteLength(properties.responseTopic);
    if (properties.contentType !== undefined) n += Buffer.byteLength(properties.contentType);
    if (properties.correlationData !== undefined) n += properties.correlationData.length;
    const user = properties.userProperties;
    if (user !== undefined)
      for (const key in user) {
        const v = user[key]!;
        if (Array.isArray(v)) for (const x of v) n += Buffer.byteLength(key) + Buffer.byteLength(x);
        else n += Buffer.byteLength(key) + Buffer.byteLength(v);
      }
  }
  return n;
}

/**
 * `publishBytes` of a QoS 0 PUBLISH encoded by `encodePublishFast` without properties (topic + payload),
 * read from its length: the frame minus the fixed header, the topic length field and (v5) the empty
 * property length. Arithmetic only, for the metered shared-bytes delivery path.
 */
export function encodedPublishBytes(frame: Buffer, v5: boolean): number {
  let i = 1;
  while (i < 5 && (frame[i]! & 0x80) !== 0) i++;
  return frame.length - (i + 1) - 2 - (v5 ? 1 : 0);
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
  let newAlias = 0;
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
        newAlias = aliases.size + 1;
        props.topicAlias = newAlias;
      }
    }
    if (props) packet.properties = props;
  }
  const buf = mqttPacket.generate(packet, { protocolVersion: target.version });
  // Only once the packet exists: a failed encode must not leave the receiver's alias state ahead of
  // what it was told [MQTT-3.3.2-12].
  if (newAlias !== 0) target.aliasesOut!.set(p.topic, newAlias);
  return buf;
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
    // The Remaining Length, as mqtt-packet sets it (metering reads the topic + payload size from it).
    length: end - start - headerLen,
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

// ---- MQTT 5 property validation ------------------------------------------------------------------------
//
// mqtt-packet decodes property blocks leniently: a truncated value comes back as -1, null or false, a
// value may run past the end of its block into the payload, a Byte property of 2 reads as `true`, and
// strings are not checked for UTF-8 or U+0000. Such packets used to be routed and stored and then made
// `generate()` throw when re-encoded for a subscriber. So every v5 frame that carries a property block
// is checked here, on its raw bytes, before it is handled (only off the fast path: a PUBLISH with an
// empty property block never gets here). Rule: what the codec cannot re-encode is never accepted.

/** Why a packet (or a stored message) was refused: the MQTT 5 reason code and a reason string. */
export interface PropertyProblem {
  readonly code: number;
  readonly reason: string;
}

/** Where a property block sits, i.e. which properties it may carry [MQTT-2.2.2.2, table 2-4]. */
const enum K {
  Connect = 1,
  Will = 2,
  Publish = 4,
  Ack = 8,
  Subscribe = 16,
  Unsubscribe = 32,
  Disconnect = 64,
  Auth = 128,
  All = 255,
}

const enum T {
  Byte01, // a Byte that must be 0 or 1
  U16,
  U32,
  Vbi,
  Utf8,
  Binary,
  Pair,
}

interface PropSpec {
  readonly name: string;
  readonly type: T;
  readonly where: number;
  /** The value 0 is a Protocol Error (Receive Maximum, Maximum Packet Size, Subscription Identifier). */
  readonly nonZero?: boolean;
}

/** Property identifier -> spec, for the properties a client may send [MQTT-2.2.2.2]. */
const PROPS: ReadonlyArray<PropSpec | undefined> = (() => {
  const t: Array<PropSpec | undefined> = [];
  const def = (id: number, name: string, type: T, where: number, nonZero = false) => {
    t[id] = { name, type, where, nonZero };
  };
  def(0x01, 'payloadFormatIndicator', T.Byte01, K.Publish | K.Will);
  def(0x02, 'messageExpiryInterval', T.U32, K.Publish | K.Will);
  def(0x03, 'contentType', T.Utf8, K.Publish | K.Will);
  def(0x08, 'responseTopic', T.Utf8, K.Publish | K.Will);
  def(0x09, 'correlationData', T.Binary, K.Publish | K.Will);
  def(0x0b, 'subscriptionIdentifier', T.Vbi, K.Publish | K.Subscribe, true);
  def(0x11, 'sessionExpiryInterval', T.U32, K.Connect | K.Disconnect);
  def(0x15, 'authenticationMethod', T.Utf8, K.Connect | K.Auth);
  def(0x16, 'authenticationData', T.Binary, K.Connect | K.Auth);
  def(0x17, 'requestProblemInformation', T.Byte01, K.Connect);
  def(0x18, 'willDelayInterval', T.U32, K.Will);
  def(0x19, 'requestResponseInformation', T.Byte01, K.Connect);
  def(0x1c, 'serverReference', T.Utf8, K.Disconnect);
  def(0x1f, 'reasonString', T.Utf8, K.Ack | K.Disconnect | K.Auth);
  def(0x21, 'receiveMaximum', T.U16, K.Connect, true);
  def(0x22, 'topicAliasMaximum', T.U16, K.Connect);
  // Topic Alias 0 or above our maximum is answered by the PUBLISH handler (0x94 Topic alias invalid).
  def(0x23, 'topicAlias', T.U16, K.Publish);
  def(0x26, 'userProperty', T.Pair, K.All);
  def(0x27, 'maximumPacketSize', T.U32, K.Connect, true);
  return t;
})();

const USER_PROPERTY = 0x26;
const AUTH_METHOD = 0x15;
const AUTH_DATA = 0x16;
const RESPONSE_TOPIC = 0x08;

const malformed = (reason: string): PropertyProblem => ({ code: RC.MALFORMED_PACKET, reason });
const protocol = (reason: string): PropertyProblem => ({ code: RC.PROTOCOL_ERROR, reason });

/** A UTF-8 string's bytes: well-formed [MQTT-1.5.4-1] and without U+0000 [MQTT-1.5.4-2]. */
function badUtf8(buf: Buffer, start: number, end: number): boolean {
  return buf.subarray(start, end).includes(0) || !isUtf8(buf.subarray(start, end));
}

/**
 * Check one property block starting at `o` (its Variable Byte Integer length) and ending no later than
 * `limit`. Returns the offset just past the block, or the problem. Errors allocate; success does not.
 * Seen identifiers are tracked in `seen` (a 64-bit set as two numbers) for the duplicate rule.
 */
function checkBlock(buf: Buffer, o: number, limit: number, where: K): number | PropertyProblem {
  const v = readVbi(buf, o, limit);
  if (v < 0) return malformed('property length is not a valid variable byte integer');
  const len = vbiValue;
  o = v;
  const end = o + len;
  if (end > limit) return malformed('property block runs past the end of the packet');
  let seenLo = 0; // ids 0x00..0x1f
  let seenHi = 0; // ids 0x20..0x3f
  while (o < end) {
    const id = buf[o++]!;
    const spec = id < PROPS.length ? PROPS[id] : undefined;
    // [MQTT-2.2.2.2] an identifier not valid for the packet type is a Malformed Packet.
    if (spec === undefined || (spec.where & where) === 0)
      return malformed(`property 0x${id.toString(16)} is not allowed here`);
    if (id !== USER_PROPERTY) {
      const bit = 1 << (id & 31);
      const seen = id < 32 ? seenLo : seenHi;
      // Every property but User Property may appear at most once (a Protocol Error otherwise).
      if (seen & bit) return protocol(`${spec.name} included more than once`);
      if (id < 32) seenLo |= bit;
      else seenHi |= bit;
    }
    switch (spec.type) {
      case T.Byte01: {
        if (o + 1 > end) return malformed(`${spec.name} is truncated`);
        const b = buf[o++]!;
        if (b > 1) return protocol(`${spec.name} must be 0 or 1`);
        break;
      }
      case T.U16:
        if (o + 2 > end) return malformed(`${spec.name} is truncated`);
        if (spec.nonZero && buf.readUInt16BE(o) === 0) return protocol(`${spec.name} must not be 0`);
        o += 2;
        break;
      case T.U32:
        if (o + 4 > end) return malformed(`${spec.name} is truncated`);
        if (spec.nonZero && buf.readUInt32BE(o) === 0) return protocol(`${spec.name} must not be 0`);
        o += 4;
        break;
      case T.Vbi: {
        const next = readVbi(buf, o, end);
        if (next < 0) return malformed(`${spec.name} is not a valid variable byte integer`);
        if (spec.nonZero && vbiValue === 0) return protocol(`${spec.name} must not be 0`);
        o = next;
        break;
      }
      case T.Utf8:
      case T.Binary:
      case T.Pair: {
        const strings = spec.type === T.Pair ? 2 : 1;
        for (let k = 0; k < strings; k++) {
          if (o + 2 > end) return malformed(`${spec.name} is truncated`);
          const n = buf.readUInt16BE(o);
          o += 2;
          if (o + n > end) return malformed(`${spec.name} runs past its property block`);
          if (spec.type !== T.Binary && badUtf8(buf, o, o + n))
            return malformed(`${spec.name} is not valid UTF-8 without U+0000`);
          if (id === RESPONSE_TOPIC) {
            // [MQTT-3.3.2-14] the Response Topic is a Topic Name: not empty, no wildcards.
            const bytes = buf.subarray(o, o + n);
            if (n === 0 || bytes.includes(0x2b) || bytes.includes(0x23))
              return protocol('response topic must be a topic name without wildcards');
          }
          o += n;
        }
        break;
      }
    }
  }
  // [MQTT-5.0 §3.1.2.11.10] Authentication Data without an Authentication Method is a Protocol Error.
  if (where === K.Connect && (seenLo & (1 << AUTH_DATA)) !== 0 && (seenLo & (1 << AUTH_METHOD)) === 0)
    return protocol('authentication data without an authentication method');
  return end;
}

/** Set by readVbi: the value of the last Variable Byte Integer read (avoids an allocation per read). */
let vbiValue = 0;

/**
 * Read a Variable Byte Integer at `o` (at most 4 bytes [MQTT-1.5.5], the minimum number of bytes
 * [MQTT-1.5.5-1]) before `limit`. Returns the offset past it (value in `vbiValue`), or -1.
 */
function readVbi(buf: Buffer, o: number, limit: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    if (o >= limit) return -1;
    const b = buf[o++]!;
    // A trailing 0x00 continuation byte means a longer encoding than needed.
    if (i > 0 && b === 0) return -1;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      vbiValue = value;
      return o;
    }
    mul *= 128;
  }
  return -1;
}

/** Offset past a 2-byte-length field (string or binary) at `o`, or -1 when it does not fit. */
function skipField(buf: Buffer, o: number, end: number): number {
  if (o + 2 > end) return -1;
  const n = buf.readUInt16BE(o) + 2;
  return o + n > end ? -1 : o + n;
}

/**
 * Check every MQTT 5 property block of one complete frame (CONNECT and its will properties, PUBLISH,
 * PUBACK/PUBREC/PUBREL/PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT, AUTH): identifiers allowed for the
 * packet type, value types and ranges, duplicates, and blocks that end exactly where they say.
 * Returns null when the frame is fine, otherwise the reason code to refuse it with (0x81 Malformed
 * Packet, or 0x82 Protocol Error where the spec says so). Call only for v5 frames mqtt-packet parsed.
 * Example: `const bad = checkFrameProperties(frame); if (bad) conn.protocolError(bad.code, bad.reason);`
 */
export function checkFrameProperties(frame: Buffer): PropertyProblem | null {
  const type = frame[0]! >> 4;
  let o = 1;
  while (o < 5 && (frame[o]! & 0x80) !== 0) o++;
  o++;
  const end = frame.length;
  let r: number | PropertyProblem;
  switch (type) {
    case 1: {
      // CONNECT [MQTT-3.1.2]: protocol name, level, flags, keep alive, properties, then the payload.
      o = skipField(frame, o, end);
      if (o < 0 || o + 4 > end) return malformed('CONNECT variable header is truncated');
      const flags = frame[o + 1]!;
      r = checkBlock(frame, o + 4, end, K.Connect);
      if (typeof r !== 'number') return r;
      if ((flags & 0x04) === 0) return null;
      o = skipField(frame, r, end); // client id
      if (o < 0) return malformed('CONNECT client identifier is truncated');
      r = checkBlock(frame, o, end, K.Will);
      if (typeof r !== 'number') return { code: r.code, reason: `will ${r.reason}` };
      return null;
    }
    case 3: {
      // PUBLISH [MQTT-3.3.2]: topic, packet id when QoS > 0, properties, payload.
      o = skipField(frame, o, end);
      if (o < 0) return malformed('PUBLISH topic is truncated');
      if ((frame[0]! & 0x06) !== 0) o += 2;
      r = checkBlock(frame, o, end, K.Publish);
      return typeof r === 'number' ? null : r;
    }
    case 4:
    case 5:
    case 6:
    case 7:
    case 14:
    case 15: {
      // Acks [MQTT-3.4.2]: packet id, then optionally reason code and properties.
      // DISCONNECT / AUTH [MQTT-3.14.2, MQTT-3.15.2]: optionally reason code and properties.
      if (type <= 7) o += 2;
      if (o > end) return malformed('packet identifier is missing');
      if (o + 1 >= end) return null; // no reason code, or a reason code without properties
      r = checkBlock(frame, o + 1, end, type <= 7 ? K.Ack : type === 14 ? K.Disconnect : K.Auth);
      if (typeof r !== 'number') return r;
      return r === end ? null : malformed('bytes after the property block');
    }
    case 8:
    case 10:
      // SUBSCRIBE / UNSUBSCRIBE [MQTT-3.8.2, MQTT-3.10.2]: packet id, properties, filters.
      r = checkBlock(frame, o + 2, end, type === 8 ? K.Subscribe : K.Unsubscribe);
      return typeof r === 'number' ? null : r;
    default:
      return null;
  }
}

const EMPTY = Buffer.alloc(0);
const PUBLISH_KEYS: Record<string, true> = {
  payloadFormatIndicator: true,
  messageExpiryInterval: true,
  contentType: true,
  responseTopic: true,
  correlationData: true,
  userProperties: true,
  subscriptionIdentifier: true,
  topicAlias: true,
};

const isU32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
const isSubId = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 268_435_455;
/** A string that encodes as a valid MQTT UTF-8 string: no U+0000, no lone surrogate, at most 65535 bytes. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isMqttString = (v: unknown): v is string =>
  typeof v === 'string' && !v.includes('\u0000') && !LONE_SURROGATE.test(v) && Buffer.byteLength(v) <= 65_535;

/**
 * Validate decoded PUBLISH (or will) properties, e.g. a message loaded from the store: every key known,
 * of the right type and range, and the whole set re-encodable by mqtt-packet. Returns null when valid,
 * otherwise the reason. Not for the hot path (it encodes once); a message without properties needs no check.
 * Example: `const why = checkPublishProperties(m.properties); if (why) { drop and count }`.
 */
export function checkPublishProperties(props: unknown): string | null {
  if (props === undefined || props === null) return null;
  if (typeof props !== 'object' || Array.isArray(props)) return 'properties are not an object';
  const p = props as Record<string, unknown>;
  for (const key in p) {
    const v = p[key];
    if (v === undefined) continue;
    if (PUBLISH_KEYS[key] !== true) return `unknown property ${key}`;
    switch (key) {
      case 'payloadFormatIndicator':
        if (typeof v !== 'boolean') return 'payloadFormatIndicator must be a boolean';
        break;
      case 'messageExpiryInterval':
        if (!isU32(v)) return 'messageExpiryInterval must be a 32-bit unsigned integer';
        break;
      case 'contentType':
        if (!isMqttString(v)) return 'contentType must be a valid UTF-8 string';
        break;
      case 'responseTopic':
        if (!isMqttString(v) || v === '' || v.includes('+') || v.includes('#'))
          return 'responseTopic must be a topic name without wildcards';
        break;
      case 'correlationData':
        if (!Buffer.isBuffer(v) || v.length > 65_535) return 'correlationData must be a Buffer';
        break;
      case 'topicAlias':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65_535)
          return 'topicAlias must be 1..65535';
        break;
      case 'subscriptionIdentifier':
        if (Array.isArray(v) ? v.length === 0 || !v.every(isSubId) : !isSubId(v))
          return 'subscriptionIdentifier must be 1..268435455';
        break;
      case 'userProperties': {
        if (typeof v !== 'object' || v === null || Array.isArray(v))
          return 'userProperties must be an object';
        for (const name in v) {
          const value = (v as Record<string, unknown>)[name];
          const ok = Array.isArray(value)
            ? value.length > 0 && value.every(isMqttString)
            : isMqttString(value);
          if (!isMqttString(name) || !ok) return 'userProperties must map strings to strings';
        }
        break;
      }
    }
  }
  try {
    mqttPacket.generate(
      { cmd: 'publish', topic: 't', payload: EMPTY, qos: 0, dup: false, retain: false, properties: p },
      { protocolVersion: 5 },
    );
  } catch (err) {
    return `properties do not re-encode: ${(err as Error).message}`;
  }
  return null;
}
