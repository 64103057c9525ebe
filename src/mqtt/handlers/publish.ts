/**
 * PUBLISH from a client and the QoS 1/2 acknowledgement packets in both directions [MQTT-3.3 .. 3.7,
 * MQTT-4.3]. Hot path: synchronous, no allocation beyond the routed message.
 */
import { isUtf8 } from 'node:buffer';
import type {
  IPubackPacket,
  IPublishPacket,
  IPubrecPacket,
  IPubrelPacket,
  IPubcompPacket,
} from 'mqtt-packet';
import type { Connection } from '../connection.js';
import type { StoreFailure } from '../durability.js';
import { authorizeClientPublish } from '../authorize.js';
import { publishBytes } from '../codec.js';
import { completed, persistQueued, pump } from '../delivery.js';
import { RC } from '../reason-codes.js';
import type { PublishProperties } from '../types.js';
import type { DropReason } from '../metrics.js';
import { checkTopicName } from '../topics.js';
import { TOPIC_ALIAS_MAX } from './connect.js';

/** Refuse one PUBLISH: v5 PUBACK/PUBREC with the reason code; QoS 0 dropped and counted. */
function refusePublish(
  conn: Connection,
  p: IPublishPacket,
  code: number,
  reason: string,
  drop: DropReason,
): void {
  conn.core.metrics.dropped[drop].inc();
  if (p.qos === 0) return;
  const ack: IPubackPacket | IPubrecPacket = {
    cmd: p.qos === 1 ? 'puback' : 'pubrec',
    messageId: p.messageId!,
    reasonCode: code,
  };
  if (conn.problemInfo) ack.properties = { reasonString: reason };
  conn.sendPacket(ack);
}

export function handlePublish(conn: Connection, p: IPublishPacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PUBLISH before CONNACK');
  const core = conn.core;
  const v5 = conn.version === 5;
  let topic = p.topic;
  const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
  let properties: PublishProperties | undefined;

  if (v5 && p.properties) {
    const { topicAlias, subscriptionIdentifier, ...rest } = p.properties;
    if (subscriptionIdentifier !== undefined) {
      // [MQTT-3.3.4-6] a client PUBLISH must not carry a Subscription Identifier.
      return conn.protocolError(
        RC.PROTOCOL_ERROR,
        'PUBLISH from a client must not carry a subscription identifier',
      );
    }
    if (topicAlias !== undefined) {
      // [MQTT-3.3.2-8, MQTT-3.3.2-9] alias 0 or above our Topic Alias Maximum: 0x94.
      if (topicAlias === 0 || topicAlias > TOPIC_ALIAS_MAX)
        return conn.protocolError(RC.TOPIC_ALIAS_INVALID, 'topic alias invalid');
      const aliases = (conn.aliasesIn ??= new Map());
      if (topic === '') {
        const known = aliases.get(topicAlias);
        if (known === undefined) return conn.protocolError(RC.PROTOCOL_ERROR, 'unknown topic alias');
        topic = known;
      } else aliases.set(topicAlias, topic);
    }
    for (const _k in rest) {
      properties = rest;
      break;
    }
  }

  // [MQTT-3.3.2-2] wildcards, [MQTT-4.7.3-1] empty topic (without alias), NUL: protocol violations.
  const problem = checkTopicName(topic, core.topicLimits);
  if (problem === 'wildcard' || problem === 'empty' || problem === 'nul') {
    core.metrics.dropped.invalid_topic.inc();
    return conn.protocolError(RC.TOPIC_NAME_INVALID, `topic name invalid (${problem})`);
  }
  if (topic.includes('\ufffd') && !validTopicBytes(conn)) {
    // [MQTT-1.5.4-1] ill-formed UTF-8 in a topic closes the connection.
    return conn.protocolError(RC.MALFORMED_PACKET, 'topic name is not valid UTF-8');
  }
  if (payload.length > core.config.limits.maxPayloadBytes) {
    // AWS §11: payload over the limit disconnects (v5 0x95 Packet too large), counted.
    core.metrics.dropped.payload_too_large.inc();
    core.metrics.protocolErrors.inc({ reason: 'payload_too_large' });
    return conn.close(
      'packet_too_large',
      RC.PACKET_TOO_LARGE,
      `payload over ${core.config.limits.maxPayloadBytes} bytes`,
    );
  }
  if (problem !== null) {
    // Over the configured size/level limits (AWS: 256 bytes, 8 levels).
    if (!v5) return conn.close('protocol_error');
    return refusePublish(conn, p, RC.TOPIC_NAME_INVALID, `topic name invalid (${problem})`, 'invalid_topic');
  }

  const s = conn.session!;
  if (p.qos === 2) {
    const pending = (s.incomingQos2 ??= new Set());
    if (pending.has(p.messageId!)) {
      // [MQTT-4.3.3-9] a resent QoS 2 PUBLISH is acknowledged again but not routed twice.
      if (conn.ackBacklog !== null) return acknowledgeInOrder(conn, 2, p.messageId!, false, false);
      conn.sendPacket({ cmd: 'pubrec', messageId: p.messageId! });
      return;
    }
    if (pending.size >= core.config.limits.maxInflight) {
      // [MQTT-3.3.4-7] more unacknowledged QoS 2 than our Receive Maximum: 0x93.
      return conn.protocolError(RC.RECEIVE_MAXIMUM_EXCEEDED, 'receive maximum exceeded');
    }
  }

  if (v5 && properties?.payloadFormatIndicator && !isUtf8(payload)) {
    // [MQTT-3.3.2-4] payload declared UTF-8 that is not: 0x99 Payload format invalid.
    return refusePublish(
      conn,
      p,
      RC.PAYLOAD_FORMAT_INVALID,
      'payload is not valid UTF-8',
      'invalid_payload_format',
    );
  }

  if (!authorizeClientPublish(core.hooks, conn.subject!, topic, p.retain)) {
    // v5: PUBACK/PUBREC 0x87, QoS 0 dropped and counted; 3.1.1 has no way to say no: disconnect (as AWS does).
    if (!v5) {
      core.metrics.dropped.not_authorized_publish.inc();
      return conn.close('not_authorized');
    }
    return refusePublish(
      conn,
      p,
      RC.NOT_AUTHORIZED,
      `not authorized to publish to ${topic}`,
      'not_authorized_publish',
    );
  }
  const quota = p.retain ? core.retained.admit(conn.clientId, topic, payload.length) : null;
  if (quota !== null) {
    // Retained quota (limits.maxRetained*): not routed. v5 0x97 with the reason; 3.1.1 disconnect.
    if (!v5) {
      core.metrics.dropped.retained_quota.inc();
      return conn.close('not_authorized');
    }
    return refusePublish(conn, p, RC.QUOTA_EXCEEDED, quota, 'retained_quota');
  }
  const usage = conn.usage;
  if (usage !== null) {
    // Metering and publish quotas (src/metering): counted here, once the PUBLISH is known to be valid and
    // authorized. Over a quota: 0x97 Quota exceeded for this PUBLISH (QoS 0: dropped, counted), far over
    // it DISCONNECT 0x96 Message rate too high; both with the reason string naming the limit. 3.1.1 has
    // no reason codes: QoS 0 is dropped, QoS 1/2 disconnects (as the other quota refusals here do).
    // Without properties (and no topic alias), topic + payload is the Remaining Length less the topic
    // length field, the packet id and the empty v5 property length: no UTF-8 length to compute.
    const bytes =
      p.properties === undefined && p.length !== undefined && p.topic === topic
        ? p.length - 2 - (p.qos > 0 ? 2 : 0) - (v5 ? 1 : 0)
        : publishBytes(topic, payload, properties);
    const rc = usage.publishIn(bytes, p.retain, topic);
    if (rc !== 0) {
      if (rc === RC.MESSAGE_RATE_TOO_HIGH) {
        core.metrics.dropped.quota_publish.inc();
        return conn.close('message_rate_too_high', RC.MESSAGE_RATE_TOO_HIGH, usage.refusal);
      }
      if (!v5 && p.qos > 0) {
        core.metrics.dropped.quota_publish.inc();
        return conn.close('message_rate_too_high');
      }
      return refusePublish(conn, p, RC.QUOTA_EXCEEDED, usage.refusal, 'quota_publish');
    }
  }
  if ((p.qos > 0 || p.retain) && core.storeBacklogFull()) {
    // Durability that tells the truth: the store is failing and its backlog is full, so nothing that needs a
    // durable write is taken (not routed, not stored). See the durability contract in core.ts.
    if (!v5) {
      core.metrics.dropped.store_unavailable.inc();
      return conn.close('server_initiated');
    }
    return refusePublish(
      conn,
      p,
      RC.QUOTA_EXCEEDED,
      'the server cannot store messages now; retry later',
      'store_unavailable',
    );
  }

  const expiry = properties?.messageExpiryInterval;
  const opsBefore = core.opsCount;
  const sentBefore = core.bus.sent;
  core.route({
    topic,
    payload,
    qos: p.qos,
    retain: p.retain,
    properties,
    expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : null,
    origin: conn.clientId,
    publisher: conn.publisher,
    ingress: performance.now(),
  });

  if (p.qos === 0) return;
  if (p.qos === 2) s.incomingQos2!.add(p.messageId!);
  const wrote = core.opsCount !== opsBefore;
  // Cluster mode: handed to NATS for the other nodes; acknowledged once NATS has it (src/cluster).
  const crossed = core.bus.sent !== sentBefore;
  if (!wrote && !crossed && conn.ackBacklog === null) {
    conn.sendAck(p.qos === 1 ? 'puback' : 'pubrec', p.messageId!);
    return;
  }
  acknowledgeInOrder(conn, p.qos, p.messageId!, wrote, crossed);
}

/** A PUBACK/PUBREC held back until the store write it depends on is done (see core.ts durability). */
export interface PendingAck {
  readonly qos: 1 | 2;
  readonly packetId: number;
  done: boolean;
  failure: StoreFailure | null;
}

/**
 * Acknowledge after the store write the PUBLISH made (when `wrote`), keeping PUBLISH order for every
 * acknowledgement of the connection [MQTT-4.6.0-2]: one that needs no write still waits behind one that does.
 */
function acknowledgeInOrder(
  conn: Connection,
  qos: 1 | 2,
  packetId: number,
  wrote: boolean,
  crossed: boolean,
): void {
  const pending: PendingAck = { qos, packetId, done: !wrote && !crossed, failure: null };
  (conn.ackBacklog ??= []).push(pending);
  if (pending.done) return sendReadyAcks(conn);
  const settle = (failure: StoreFailure | null) => {
    pending.done = true;
    pending.failure = failure;
    sendReadyAcks(conn);
  };
  const routed = () =>
    conn.core.bus.afterSent((why) =>
      settle(why === null ? null : { code: why, message: why, full: false, since: Date.now() }),
    );
  if (!wrote) return routed();
  conn.core.afterDurable((failure) => (failure !== null || !crossed ? settle(failure) : routed()));
}

function sendReadyAcks(conn: Connection): void {
  const backlog = conn.ackBacklog;
  if (backlog === null) return;
  while (backlog.length && backlog[0]!.done) {
    const a = backlog.shift()!;
    if (conn.state !== 'connected') break;
    if (a.failure === null) {
      // A resent QoS 2 PUBLISH queued behind its original, whose write failed: nothing to acknowledge.
      if (a.qos === 2 && conn.session?.incomingQos2?.has(a.packetId) !== true) continue;
      conn.sendAck(a.qos === 1 ? 'puback' : 'pubrec', a.packetId);
      continue;
    }
    // The write failed: the message is not acknowledged as stored. v5 says why; 3.1.1 cannot, so the
    // client is disconnected without the acknowledgement and will resend.
    conn.core.metrics.dropped.store_unavailable.inc();
    conn.session?.incomingQos2?.delete(a.packetId);
    if (conn.version !== 5) {
      conn.close('server_initiated');
      break;
    }
    const ack: IPubackPacket | IPubrecPacket = {
      cmd: a.qos === 1 ? 'puback' : 'pubrec',
      messageId: a.packetId,
      reasonCode: a.failure.full ? RC.QUOTA_EXCEEDED : RC.UNSPECIFIED_ERROR,
    };
    if (conn.problemInfo)
      ack.properties = {
        reasonString: `the server could not store or route the message (${a.failure.code})`,
      };
    conn.sendPacket(ack);
  }
  if (backlog.length === 0 || conn.state !== 'connected') conn.ackBacklog = null;
}

/** The raw topic bytes of the current PUBLISH are valid UTF-8 (only checked when decoding replaced bytes). */
function validTopicBytes(conn: Connection): boolean {
  const frame = conn.currentFrame;
  if (!frame) return true;
  let i = 1;
  while (i < 5 && (frame[i]! & 0x80) !== 0) i++;
  const start = i + 1;
  const len = frame.readUInt16BE(start);
  return isUtf8(frame.subarray(start + 2, start + 2 + len));
}

/** PUBREL from the client: release the QoS 2 packet id, answer PUBCOMP [MQTT-4.3.3-11]. */
export function handlePubrel(conn: Connection, p: IPubrelPacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PUBREL before CONNACK');
  const s = conn.session!;
  const known = s.incomingQos2?.delete(p.messageId!) ?? false;
  const comp: IPubcompPacket = { cmd: 'pubcomp', messageId: p.messageId! };
  // [MQTT-5.0 §3.7.2.1] v5: 0x92 Packet Identifier not found.
  if (!known && conn.version === 5) {
    comp.reasonCode = RC.PACKET_IDENTIFIER_NOT_FOUND;
    conn.sendPacket(comp);
  } else conn.sendAck('pubcomp', p.messageId!);
}

/** PUBACK for a QoS 1 delivery [MQTT-4.3.2]. */
export function handlePuback(conn: Connection, p: IPubackPacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PUBACK before CONNACK');
  const s = conn.session!;
  // AWS meters a PUBACK received from a device (pricing "additional metering details").
  if (conn.usage !== null) conn.usage.controlIn(0);
  const q = s.inflight.get(p.messageId!);
  if (!q || q.qos !== 1) return;
  completed(conn.core, s, p.messageId!);
  pump(conn.core, s);
}

/** PUBREC for a QoS 2 delivery: answer PUBREL, or end the exchange on a failure code [MQTT-4.3.3]. */
export function handlePubrec(conn: Connection, p: IPubrecPacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PUBREC before CONNACK');
  const s = conn.session!;
  const q = s.inflight.get(p.messageId!);
  if (!q || q.qos !== 2) {
    if (conn.version === 5)
      conn.sendPacket({ cmd: 'pubrel', messageId: p.messageId!, reasonCode: RC.PACKET_IDENTIFIER_NOT_FOUND });
    return;
  }
  if ((p.reasonCode ?? 0) >= RC.UNSPECIFIED_ERROR) {
    completed(conn.core, s, p.messageId!);
    pump(conn.core, s);
    return;
  }
  q.state = 2;
  if (q.persisted) persistQueued(conn.core, s, q);
  conn.sendAck('pubrel', p.messageId!);
}

/** PUBCOMP ends a QoS 2 delivery. */
export function handlePubcomp(conn: Connection, p: IPubcompPacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PUBCOMP before CONNACK');
  const s = conn.session!;
  const q = s.inflight.get(p.messageId!);
  if (!q || q.qos !== 2) return;
  completed(conn.core, s, p.messageId!);
  pump(conn.core, s);
}
