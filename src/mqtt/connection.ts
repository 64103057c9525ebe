/**
 * One client connection over any duplex stream: framing, parsing (mqtt-packet), outbound batching,
 * keep-alive, backpressure and closing. Protocol decisions live in handlers/*.ts and core.ts.
 *
 * Contracts:
 * - Read side: packets of one chunk are handled synchronously in order; while CONNECT authentication is
 *   pending, later bytes stay buffered (bounded by the max packet size) and the stream is paused.
 * - Write side: `send()` only appends to a per-connection batch; the core flushes every dirty connection
 *   once per event-loop turn (setImmediate), one write per connection. When `write()` returns false the
 *   connection stops reading from its client until 'drain' (honours backpressure). Buffered bytes beyond
 *   `limits.maxOutboundBytes` disconnect the client as a slow consumer.
 * - Per-connection state is small: no timer of its own (the core sweeps connect and keep-alive deadlines),
 *   lazily allocated alias maps, shared parsers.
 */
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import mqttPacket from 'mqtt-packet';
import type { IConnectPacket, Packet } from 'mqtt-packet';
import type { AuthzSubject, ConnectionInfo, ConnectionUsage, Principal } from './hooks.js';
import type { Publisher } from './types.js';
import type { Session, WillSpec } from './session.js';
import type { PendingAck } from './handlers/publish.js';
import type { Core } from './core.js';
import { dispatch } from './handlers/dispatch.js';
import {
  PARSER_V4,
  PARSER_V5,
  checkFrameProperties,
  checkPublishProperties,
  encodeAck,
  encodePublish,
  parsePublishFast,
  publishBytes,
  type OutboundPublish,
  type PropertyProblem,
} from './codec.js';
import { handlePublish } from './handlers/publish.js';
import { refuse } from './handlers/connect.js';
import { RC } from './reason-codes.js';
import { rateLimitedLog } from '../observability/index.js';

/** Why a connection ended; mapped to AWS lifecycle `disconnectReason` and the disconnects counter. */
export type CloseReason =
  | 'client_disconnect'
  | 'duplicate_clientid'
  | 'keepalive_timeout'
  | 'connection_lost'
  | 'protocol_error'
  | 'packet_too_large'
  | 'not_authorized'
  | 'auth_error'
  | 'slow_consumer'
  | 'connect_timeout'
  /** CONNECT refused by the per-client-id connect rate limit (or a metering connect quota). */
  | 'connect_throttled'
  /** Disconnected with 0x96 for publishing far over its publish quota (src/metering quotas). */
  | 'message_rate_too_high'
  | 'server_initiated'
  | 'server_shutdown';

/** new -> (authenticating <-> authwait) -> connected -> closed. Input is parsed in every state but authenticating. */
const ACK_TYPES = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;
/** Outbound bytes after which a connection's batch is written at once (one good-sized write). */
const EARLY_FLUSH_BYTES = 64 * 1024;

/** One rate-limited warning function per core, for failures that a flood of clients could repeat. */
const warners = new WeakMap<Core, (obj: object, msg: string) => void>();
function warnOnce(core: Core, obj: object, msg: string): void {
  let w = warners.get(core);
  if (!w) warners.set(core, (w = rateLimitedLog(core.log)));
  w(obj, msg);
}

/** The stream's back-reference to its connection, read by the shared stream listeners. */
const CONNECTION = Symbol('mqttConnection');
type OwnedStream = Duplex & { [CONNECTION]?: Connection };

/** Timer callback: destroy a stream that was ended but whose peer never closed (never throws). */
function destroyStream(stream: Duplex): void {
  try {
    stream.destroy();
  } catch {
    // Already torn down; nothing else depends on it.
  }
}

/** The protocol level byte of a CONNECT frame, or 0 when the frame is too short to say. */
function connectLevel(frame: Buffer): number {
  let o = 1;
  while (o < 5 && o < frame.length && (frame[o]! & 0x80) !== 0) o++;
  o++;
  if (o + 2 > frame.length) return 0;
  const at = o + 2 + frame.readUInt16BE(o);
  return at < frame.length ? frame[at]! : 0;
}

/**
 * Belt and braces for properties the broker keeps beyond the packet (a retained message, a will): they
 * must re-encode with mqtt-packet (see checkPublishProperties). Costs one encode, only for those packets.
 */
function checkKeptProperties(packet: Packet): PropertyProblem | null {
  let why: string | null = null;
  if (packet.cmd === 'publish' && packet.retain && packet.properties) {
    why = checkPublishProperties(packet.properties);
  } else if (packet.cmd === 'connect' && packet.will?.properties) {
    why = checkPublishProperties(withoutWillDelay(packet.will.properties));
  }
  return why === null ? null : { code: RC.MALFORMED_PACKET, reason: why };
}

function withoutWillDelay(p: object): object {
  const { willDelayInterval: _delay, ...rest } = p as { willDelayInterval?: number };
  return rest;
}

/** 'data' listener shared by every connection (`this` is the stream). */
function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this[CONNECTION]?.onData(chunk);
}

/** 'error' / 'close' / 'end' listener shared by every connection (`this` is the stream). */
function onStreamEnded(this: OwnedStream): void {
  this[CONNECTION]?.onStreamEnd();
}

export type ConnState = 'new' | 'authenticating' | 'authwait' | 'connected' | 'closed';

export class Connection {
  state: ConnState = 'new';
  version: 3 | 4 | 5 = 4;
  clientId = '';
  sessionIdentifier = '';
  session: Session | null = null;
  subject: AuthzSubject | null = null;
  principal: Principal | null = null;
  connectedAt = 0;
  /** Effective keep-alive in seconds (0 = none). */
  keepAlive = 0;
  will: WillSpec | null = null;
  /** Largest packet we send: the v5 client's Maximum Packet Size [MQTT-3.1.2-24], capped by limits.maxPacketBytes. */
  maxPacketOut: number;
  /** Outbound in-flight window: min(client Receive Maximum, limits.maxInflight) [MQTT-3.3.4-9]. */
  sendWindow: number;
  /** v5: the client's Topic Alias Maximum for server-to-client aliases. */
  aliasMaxOut = 0;
  aliasesOut: Map<string, number> | null = null;
  aliasesIn: Map<number, string> | null = null;
  /** v5 Request Problem Information [MQTT-3.1.2-29]: reason strings only when true. */
  problemInfo = true;
  /** Whether the v5 CONNECT had Session Expiry Interval 0 (then DISCONNECT may not raise it). */
  connectExpiryZero = true;
  /** Enhanced authentication in progress (AUTH exchange). */
  authMethod: string | null = null;
  authStep = 0;
  pendingConnect: IConnectPacket | null = null;
  /** User Name of the CONNECT, handed to the enhanced-auth hook again on re-authentication. */
  authUsername: string | undefined = undefined;
  /** Re-authentication [MQTT-4.12.1]: -1 none, >= 0 the step being decided, -2 waiting for the client. */
  reauthStep = -1;
  /** The step number the client's next AUTH 0x18 answers. */
  reauthNext = 0;
  /** Bumped per re-authentication step, so a late async answer of an abandoned step is ignored. */
  reauthSeq = 0;
  closeReason: CloseReason | null = null;
  /** v5 Assigned Client Identifier, returned in the CONNACK. */
  assignedClientId: string | undefined = undefined;
  /** Who publishes from this connection (set at CONNACK). */
  publisher: Publisher | null = null;
  /** The frame being handled (valid only during a handler call). */
  currentFrame: Buffer | null = null;
  /**
   * PUBACK/PUBREC not sent yet because a store write they depend on is pending, in PUBLISH order
   * [MQTT-4.6.0-2]; null when none wait (see handlers/publish.ts).
   */
  ackBacklog: PendingAck[] | null = null;
  /** Usage counters and quota gates (src/metering) from CONNACK on; null when metering is off. */
  usage: ConnectionUsage | null = null;

  private input: Buffer | null = null;
  private out: Buffer[] = [];
  private outBytes = 0;
  private dirty = false;
  private blocked = false;
  private oldestIngress = 0;
  private lastActivity = Date.now();
  /** Until CONNACK: the connect deadline (epoch ms). After: the keep-alive idle limit in ms (0 = none). */
  private deadline: number;

  constructor(
    readonly core: Core,
    readonly stream: Duplex,
    readonly info: ConnectionInfo,
  ) {
    this.sendWindow = core.config.limits.maxInflight;
    this.maxPacketOut = core.config.limits.maxPacketBytes;
    // Shared listeners (no closures per connection): they find this connection through the stream.
    (stream as OwnedStream)[CONNECTION] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamEnded);
    stream.on('close', onStreamEnded);
    stream.on('end', onStreamEnded);
    // A CONNECT that never comes: closed after connectTimeoutMs (checked by the core's sweep).
    this.deadline = this.lastActivity + core.config.limits.connectTimeoutMs;
  }

  /** Called by the core's sweep (a few times a second): connect timeout and keep-alive. */
  checkDeadlines(now: number): void {
    if (this.state === 'connected') {
      // [MQTT-3.1.2-22] 1.5 x keep-alive without a packet closes the connection.
      if (this.deadline > 0 && now - this.lastActivity >= this.deadline) this.close('keepalive_timeout');
    } else if (this.state !== 'closed' && now >= this.deadline) this.close('connect_timeout');
  }

  newSessionIdentifier(): string {
    this.sessionIdentifier = randomUUID();
    return this.sessionIdentifier;
  }

  setProtocolVersion(v: 3 | 4 | 5): void {
    this.version = v;
  }

  // ---- read side -------------------------------------------------------------------------------------

  /** Input from the stream (via the shared 'data' listener). */
  onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.core.metrics.bytesIn.inc(chunk.length);
    if (this.usage !== null) this.usage.bytesIn += chunk.length;
    this.lastActivity = Date.now();
    this.input = this.input ? Buffer.concat([this.input, chunk]) : chunk;
    this.processInput();
  }

  /** Frame and handle buffered input. Re-entered after async CONNECT authentication completes. */
  processInput(): void {
    const buf = this.input;
    if (!buf) return;
    const maxPacket = this.core.config.limits.maxPacketBytes;
    let offset = 0;
    while (this.state !== 'closed' && this.state !== 'authenticating') {
      const avail = buf.length - offset;
      if (avail < 2) break;
      // Remaining Length: variable byte integer, at most 4 bytes [MQTT-1.5.5].
      let len = 0;
      let mul = 1;
      let i = 1;
      let complete = false;
      for (; i <= 4 && offset + i < buf.length; i++) {
        const b = buf[offset + i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i > 4) return this.protocolError(RC.MALFORMED_PACKET, 'malformed remaining length');
        break;
      }
      const total = i + 1 + len;
      if (total > maxPacket) {
        // [MQTT-5.0 §3.2.2.3.6] packets over the Maximum Packet Size the server announced: 0x95.
        this.core.metrics.protocolErrors.inc({ reason: 'packet_too_large' });
        return this.close(
          'packet_too_large',
          RC.PACKET_TOO_LARGE,
          `packet of ${total} bytes exceeds ${maxPacket}`,
        );
      }
      if (avail < total) break;
      const start = offset;
      offset += total;
      const type = buf[start]! >> 4;
      if (this.state === 'new' && type !== 1) {
        // [MQTT-3.1.0-1] the first packet must be CONNECT.
        this.core.metrics.protocolErrors.inc({ reason: 'first_packet_not_connect' });
        return this.close('protocol_error');
      }
      if (type >= 4 && type <= 7 && len < 2) {
        // [MQTT-3.4.2, 3.5.2, 3.6.2, 3.7.2] an acknowledgement carries a 2-byte packet identifier; without
        // one it is a Malformed Packet (mqtt-packet would decode it as packet id -1).
        return this.protocolError(RC.MALFORMED_PACKET, 'acknowledgement without a packet identifier');
      }
      if (type === 3 && this.state === 'connected') {
        // Hot path: PUBLISH without v5 properties skips mqtt-packet (see codec.ts).
        const p = parsePublishFast(buf, start, i + 1, start + total, this.version === 5);
        if (p === 'malformed') return this.protocolError(RC.MALFORMED_PACKET, 'malformed PUBLISH');
        if (p !== null) {
          this.core.metrics.packetsIn.publish!.inc();
          try {
            handlePublish(this, p);
          } catch (err) {
            this.core.onHandlerError(this, err);
          }
          continue;
        }
      }
      if (type >= 4 && type <= 7 && len === 2 && this.state === 'connected') {
        // Hot path for QoS 1/2 acknowledgements without reason code: 2-byte packet id only.
        // Flags must be 0000, or 0010 for PUBREL [MQTT-3.6.1-1, MQTT-2.2.2-2].
        if ((buf[start]! & 0x0f) !== (type === 6 ? 2 : 0))
          return this.protocolError(RC.MALFORMED_PACKET, 'bad fixed header flags');
        const cmd = ACK_TYPES[type - 4]!;
        this.core.metrics.packetsIn[cmd]!.inc();
        try {
          dispatch(this, { cmd, messageId: buf.readUInt16BE(start + 2) });
        } catch (err) {
          this.core.onHandlerError(this, err);
        }
        continue;
      }
      const frame = buf.subarray(start, start + total);
      const packet = (this.version === 5 ? PARSER_V5 : PARSER_V4).parse(frame);
      if (packet instanceof Error) return this.onParseError(packet, frame);
      if (this.version === 5 || (packet.cmd === 'connect' && packet.protocolVersion === 5)) {
        // mqtt-packet decodes property blocks leniently: check them on the raw bytes before anything
        // acts on the packet (see codec.ts). Off the fast path only.
        const bad = checkFrameProperties(frame) ?? checkKeptProperties(packet);
        if (bad) return this.onBadProperties(packet, bad);
      }
      this.currentFrame = frame;
      this.onPacket(packet);
      this.currentFrame = null;
    }
    this.input = offset >= buf.length ? null : offset === 0 ? buf : buf.subarray(offset);
    // Do not keep a whole chunk alive for a small partial packet.
    if (this.input && this.input.buffer.byteLength > 4 * this.input.length + 16_384)
      this.input = Buffer.from(this.input);
  }

  private onParseError(err: Error, frame: Buffer): void {
    if (this.state === 'new') {
      const v5 = connectLevel(frame) === 5;
      if (/protocol version|protocol id/i.test(err.message)) {
        // [MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01 (3.1.1) / 0x84 (v5), then close.
        this.writeNow(
          mqttPacket.generate(
            v5
              ? { cmd: 'connack', sessionPresent: false, reasonCode: RC.UNSUPPORTED_PROTOCOL_VERSION }
              : { cmd: 'connack', sessionPresent: false, returnCode: 1 },
            { protocolVersion: v5 ? 5 : 4 },
          ),
        );
      } else if (v5) {
        // [MQTT-4.13.1] a malformed v5 CONNECT may be answered with CONNACK 0x81 before closing.
        this.writeNow(
          mqttPacket.generate(
            { cmd: 'connack', sessionPresent: false, reasonCode: RC.MALFORMED_PACKET },
            { protocolVersion: 5 },
          ),
        );
      }
      this.core.metrics.protocolErrors.inc({ reason: 'malformed_connect' });
      const code = /protocol version|protocol id/i.test(err.message)
        ? RC.UNSUPPORTED_PROTOCOL_VERSION
        : RC.MALFORMED_PACKET;
      this.core.connLog.refused(this, code, err.message);
      return this.close('protocol_error');
    }
    this.protocolError(RC.MALFORMED_PACKET, `malformed packet: ${err.message}`);
  }

  /** A v5 packet whose property block the codec refused: CONNACK (for a CONNECT) or DISCONNECT. */
  private onBadProperties(packet: Packet, bad: PropertyProblem): void {
    if (packet.cmd === 'connect' && this.state === 'new') {
      this.setProtocolVersion(5);
      this.core.metrics.protocolErrors.inc({
        reason: bad.code === RC.MALFORMED_PACKET ? 'malformed_connect' : 'protocol',
      });
      this.core.logProtocolError(this, bad.code, bad.reason);
      return refuse(this, bad.code, bad.reason, 'protocol_error');
    }
    this.protocolError(bad.code, bad.reason);
  }

  private onPacket(packet: Packet): void {
    if (this.state === 'closed') return;
    this.core.metrics.packetsIn[packet.cmd]?.inc();
    try {
      dispatch(this, packet);
    } catch (err) {
      // A handler bug must never crash the process: close this connection, count and log it.
      this.core.onHandlerError(this, err);
    }
  }

  /** Stop reading (CONNECT authentication pending, or the client is not reading our writes). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    if (this.state !== 'closed' && !this.blocked) this.stream.resume();
  }

  // ---- write side ------------------------------------------------------------------------------------

  /** Queue an encoded packet. Takes ownership of `buf`. */
  send(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.out.push(buf);
    this.outBytes += buf.length;
    if (this.outBytes + this.stream.writableLength > this.core.config.limits.maxOutboundBytes) {
      this.core.onSlowConsumer(this);
      return;
    }
    if (this.outBytes >= EARLY_FLUSH_BYTES && !this.blocked) {
      // A full batch goes out now instead of at the end of the read turn: under heavy fan-in one turn
      // can route tens of thousands of messages, and holding them all back would add their processing
      // time to every message's latency. Measured with bench/: QoS 0 fan-in 754k -> 970k msg/s.
      this.flush();
      return;
    }
    if (!this.dirty) {
      this.dirty = true;
      this.core.markDirty(this);
    }
  }

  /** PUBACK/PUBREC/PUBREL/PUBCOMP with reason Success and no properties (fast path, see codec.ts). */
  sendAck(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number): void {
    this.core.metrics.packetsOut[type]!.inc();
    this.send(encodeAck(type, packetId));
  }

  /** Encode and queue a control packet. */
  sendPacket(packet: Packet): void {
    this.core.metrics.packetsOut[packet.cmd]?.inc();
    this.send(mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  /**
   * Encode and queue one PUBLISH. Returns false when it was not sent: it could not be encoded for this
   * receiver, or it exceeds the client's Maximum Packet Size [MQTT-3.1.2-25]. The drop is counted here,
   * once, with its reason (encode_failed / packet_too_large); the caller treats it as delivered.
   */
  sendPublish(p: OutboundPublish, ingress: number): boolean {
    let buf: Buffer;
    try {
      buf = encodePublish(this, p);
    } catch (err) {
      // Runs while handling ANOTHER client's packet (or a will timer): an encoding failure must affect
      // only this delivery to this receiver. Counted, logged (rate-limited), treated as undeliverable.
      this.core.metrics.dropped.encode_failed.inc();
      warnOnce(
        this.core,
        { err, clientId: this.clientId, topic: p.topic },
        'mqtt delivery could not be encoded',
      );
      return false;
    }
    if (!this.sendEncodedPublish(buf, ingress)) return false;
    if (this.usage !== null) this.usage.publishOut(publishBytes(p.topic, p.payload, p.properties));
    return true;
  }

  /**
   * Queue an already encoded PUBLISH (possibly shared with other connections: never mutated). False, and
   * counted as packet_too_large, when it exceeds the client's Maximum Packet Size [MQTT-3.1.2-25].
   */
  sendEncodedPublish(buf: Buffer, ingress: number): boolean {
    if (buf.length > this.maxPacketOut) {
      this.core.metrics.dropped.packet_too_large.inc();
      return false;
    }
    this.core.metrics.packetsOut.publish!.inc();
    if (this.oldestIngress === 0 && ingress > 0) this.oldestIngress = ingress;
    this.send(buf);
    return true;
  }

  /** Write the batch. Called by the core's flush, once per event-loop turn for dirty connections. */
  flush(): void {
    this.dirty = false;
    if (this.state === 'closed' || this.blocked || this.outBytes === 0) return;
    const out = this.out;
    const data = out.length === 1 ? out[0]! : Buffer.concat(out, this.outBytes);
    this.core.metrics.bytesOut.inc(this.outBytes);
    if (this.usage !== null) this.usage.bytesOut += this.outBytes;
    this.out = [];
    this.outBytes = 0;
    if (this.oldestIngress) {
      this.core.metrics.latency.observe((performance.now() - this.oldestIngress) / 1000);
      this.oldestIngress = 0;
    }
    if (!this.stream.write(data)) {
      this.blocked = true;
      this.stream.pause();
      this.stream.once('drain', () => {
        this.blocked = false;
        if (this.state === 'closed') return;
        try {
          this.resume();
          if (this.outBytes) this.flush();
        } catch (err) {
          // An event callback: nothing above it would catch this, so it must not escape.
          this.core.onHandlerError(this, err);
        }
      });
    }
  }

  /** Write immediately, bypassing the batch (CONNACK refusals and DISCONNECT before closing). */
  private writeNow(buf: Buffer): void {
    if (this.outBytes) {
      this.out.push(buf);
      buf = Buffer.concat(this.out);
      this.out = [];
      this.outBytes = 0;
    }
    this.core.metrics.bytesOut.inc(buf.length);
    if (this.usage !== null) this.usage.bytesOut += buf.length;
    if (!this.stream.destroyed && this.stream.writable) this.stream.write(buf);
  }

  // ---- keep-alive ------------------------------------------------------------------------------------

  /** Start the keep-alive check: 1.5 x keep-alive without a packet closes the connection [MQTT-3.1.2-22]. */
  startKeepAlive(): void {
    this.lastActivity = Date.now();
    this.deadline = this.keepAlive > 0 ? this.keepAlive * 1500 : 0;
  }

  // ---- closing ---------------------------------------------------------------------------------------

  /** A protocol violation: v5 DISCONNECT with the reason code and a reason string, then close. */
  protocolError(code: number, reason: string): void {
    this.core.metrics.protocolErrors.inc({ reason: code === RC.MALFORMED_PACKET ? 'malformed' : 'protocol' });
    this.core.logProtocolError(this, code, reason);
    this.close('protocol_error', code, reason);
  }

  /**
   * Close the connection. With `reasonCode` and a v5 client past CONNECT, a DISCONNECT is sent first
   * [MQTT-3.14.0-1 server DISCONNECT only after CONNACK]. Session and will handling run exactly once.
   */
  close(reason: CloseReason, reasonCode?: number, reasonString?: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.closeReason = reason;
    if (reasonCode !== undefined && wasConnected && this.version === 5 && reason !== 'slow_consumer') {
      const packet: Packet = { cmd: 'disconnect', reasonCode };
      if (reasonString && this.problemInfo) packet.properties = { reasonString };
      this.core.metrics.packetsOut.disconnect!.inc();
      this.writeNow(mqttPacket.generate(packet, { protocolVersion: 5 }));
    } else if (reason !== 'slow_consumer' && this.outBytes) {
      this.writeNow(Buffer.alloc(0));
    }
    this.out = [];
    this.outBytes = 0;
    this.input = null;
    if (this.usage !== null) this.usage.close();
    if (reason === 'slow_consumer' || reason === 'connection_lost') this.stream.destroy();
    else {
      this.stream.end();
      // Do not wait for a peer that never reads: destroy shortly after ending.
      setTimeout(destroyStream, 1000, this.stream).unref();
    }
    this.core.onClosed(this, wasConnected);
  }

  /** The stream ended, failed or closed (via the shared listener). */
  onStreamEnd(): void {
    if (this.state !== 'closed') this.close('connection_lost');
  }
}
