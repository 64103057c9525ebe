/**
 * Delivery to one session, with QoS windows and queues [MQTT-4.3, MQTT-5.0 §4.9]: QoS 0 straight to the
 * socket (shared encoded bytes where no per-receiver header differs), QoS 1/2 into the in-flight window up to
 * the client's Receive Maximum, beyond it into the session's bounded queue (oldest QoS 1 dropped first,
 * counted); resumption resends in-flight messages with DUP=1 and PUBREL [MQTT-4.4.0-1]. Persistent sessions'
 * queued and in-flight messages are written through `core.persist` (see the durability contract in core.ts).
 *
 * Hot path: `deliver` and everything it calls is synchronous. Every delivery is authorized (iot:Receive) for
 * the connection receiving it, also for stored messages sent later.
 */
import type { Core } from './core.js';
import type { Connection } from './connection.js';
import type { Queued, Routed, Session } from './session.js';
import type { Message } from './types.js';
import { encodePublishFast, encodedPublishBytes, ownPayload } from './codec.js';
import { authorizeReceive, authorizeSubscribe } from './authorize.js';

/** Deliver one message to one session with the granted QoS. Hot path. */
export function deliver(
  core: Core,
  s: Session,
  msg: Routed,
  qos: 0 | 1 | 2,
  retain: boolean,
  subIds: number[] | null,
): void {
  const conn = s.conn;
  const subject = conn ? conn.subject : s.subject;
  if (subject !== null && !authorizeReceive(core.hooks, subject, msg.topic)) {
    core.metrics.dropped.not_authorized_receive.inc();
    return;
  }
  if (msg.expiresAt !== null && msg.expiresAt <= Date.now()) {
    core.metrics.dropped.expired.inc();
    return;
  }
  if (qos === 0) {
    // QoS 0 is not queued for offline sessions.
    if (conn === null) return;
    // A delivery that is not sent (too large, or not encodable) was counted by the connection.
    if (
      !retain &&
      subIds === null &&
      msg.properties === undefined &&
      msg.expiresAt === null &&
      conn.aliasMaxOut === 0
    ) {
      // Shared bytes: encoded once per message and protocol family, reused by every such receiver.
      const buf =
        conn.version === 5
          ? (msg.enc5 ??= encodePublishFast(msg.topic, msg.payload, 0, false, false, 0, true))
          : (msg.enc4 ??= encodePublishFast(msg.topic, msg.payload, 0, false, false, 0, false));
      if (conn.sendEncodedPublish(buf, msg.ingress) && conn.usage !== null)
        conn.usage.publishOut(encodedPublishBytes(buf, conn.version === 5));
    } else conn.sendPublish(outbound(msg, 0, retain, subIds, 0, false), msg.ingress);
    return;
  }
  keep(msg);
  const q: Queued = { seq: ++s.seq, msg, qos, retain, subIds, state: 0, packetId: 0, persisted: false };
  if (conn !== null && s.queue.length === 0 && s.inflightCount < conn.sendWindow)
    sendQueued(core, s, conn, q, false);
  else enqueue(core, s, q);
}

/** The PUBLISH one receiver gets (the message is shared; this is its small per-delivery header). */
export function outbound(
  msg: Routed,
  qos: 0 | 1 | 2,
  retain: boolean,
  subIds: number[] | null,
  packetId: number,
  dup: boolean,
) {
  return {
    topic: msg.topic,
    payload: msg.payload,
    qos,
    retain,
    dup,
    packetId,
    properties: msg.properties,
    expiresAt: msg.expiresAt,
    subIds,
  };
}

/** Queue for later (offline, or the in-flight window is full). Bounded: the oldest is dropped, counted. */
function enqueue(core: Core, s: Session, q: Queued): void {
  if (s.queue.length >= core.config.limits.maxQueuedPerSession) {
    // Drop policy: the oldest QoS 1 message (QoS 0 is never queued); the oldest QoS 2 only if none.
    const first = s.queue[0]!;
    const i = first.qos === 1 ? 0 : s.queue.findIndex((x) => x.qos === 1);
    const old = i <= 0 ? s.queue.shift()! : s.queue.splice(i, 1)[0]!;
    core.metrics.dropped.queue_full.inc();
    if (old.persisted) core.persist({ op: 'dequeue', clientId: s.clientId, seq: old.seq });
  }
  s.queue.push(q);
  if (s.conn === null && s.persistent) persistQueued(core, s, q);
}

/** Write (or update the state of) one queued message of a persistent session. */
export function persistQueued(core: Core, s: Session, q: Queued): void {
  q.persisted = true;
  const m = q.msg;
  const properties = q.subIds
    ? ({ ...(m.properties ?? {}), subscriptionIdentifier: q.subIds } as Message['properties'])
    : m.properties;
  core.persist({
    op: 'enqueue',
    clientId: s.clientId,
    seq: q.seq,
    state: q.state,
    packetId: q.state > 0 ? q.packetId : null,
    message: {
      topic: m.topic,
      payload: m.payload,
      qos: q.qos,
      retain: q.retain,
      properties,
      expiresAt: m.expiresAt,
    },
  });
}

/** Write every not-yet-persisted in-flight or queued message of a persistent session. */
export function persistUndelivered(core: Core, s: Session): void {
  if (s.inflightCount) for (const q of s.inflight.values()) if (!q.persisted) persistQueued(core, s, q);
  for (const q of s.queue) if (!q.persisted) persistQueued(core, s, q);
}

function sendQueued(core: Core, s: Session, conn: Connection, q: Queued, dup: boolean): void {
  const id = s.allocatePacketId();
  q.packetId = id;
  q.state = 1;
  s.inflight.set(id, q);
  if (!conn.sendPublish(outbound(q.msg, q.qos, q.retain, q.subIds, id, dup), q.msg.ingress)) {
    // [MQTT-3.1.2-25] too large for the client (or not encodable): discard, behave as if delivered
    // (counted by the connection).
    completed(core, s, id);
  }
}

/** An outbound QoS 1/2 exchange finished (PUBACK / PUBCOMP): free the slot and send what waits. */
export function completed(core: Core, s: Session, packetId: number): boolean {
  const q = s.inflight.get(packetId);
  if (!q) return false;
  s.inflight.delete(packetId);
  if (q.persisted) core.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
  return true;
}

/** Fill the in-flight window from the queue [MQTT-5.0 §4.9] (flow control: the Receive Maximum). */
export function pump(core: Core, s: Session): void {
  const conn = s.conn;
  if (conn === null) return;
  const now = Date.now();
  while (s.queue.length && s.inflightCount < conn.sendWindow && conn.state === 'connected') {
    const q = s.queue.shift()!;
    if (q.msg.expiresAt !== null && q.msg.expiresAt <= now) {
      core.metrics.dropped.expired.inc();
      if (q.persisted) core.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
      continue;
    }
    // Stored messages are authorized again at delivery, for the connection receiving them now: the
    // permission may have been removed while they waited, or another principal took the session over.
    if (conn.subject !== null && !authorizeReceive(core.hooks, conn.subject, q.msg.topic)) {
      core.metrics.dropped.not_authorized_receive.inc();
      if (q.persisted) core.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
      continue;
    }
    if (q.persisted) {
      // Resending from the store: remember the packet id as in flight.
      sendQueued(core, s, conn, q, false);
      if (s.inflight.has(q.packetId)) persistQueued(core, s, q);
    } else sendQueued(core, s, conn, q, false);
  }
}

/** On session resumption: resend unacknowledged PUBLISH with DUP=1 and PUBREL [MQTT-4.4.0-1]. */
export function resume(core: Core, s: Session, conn: Connection): void {
  if (s.qos2Stored) {
    // The ids live in memory while the session is online; the stored copy would outlive their PUBREL.
    s.qos2Stored = false;
    core.persist({ op: 'qos2', clientId: s.clientId, packetIds: [] });
  }
  const subject = conn.subject;
  if (subject !== null && s.subCount) {
    // Stored subscriptions are authorized again for the subject resuming the session (iot:Subscribe).
    for (const filter of [...s.subs.keys()]) {
      if (!authorizeSubscribe(core.hooks, subject, filter)) {
        core.removeSubscription(s, filter);
        core.metrics.dropped.subscription_revoked.inc();
      }
    }
  }
  if (s.inflightCount)
    for (const [id, q] of [...s.inflight]) {
      // PUBREL only completes a message the client already received.
      if (q.state === 2) conn.sendPacket({ cmd: 'pubrel', messageId: id });
      else if (subject !== null && !authorizeReceive(core.hooks, subject, q.msg.topic)) {
        core.metrics.dropped.not_authorized_receive.inc();
        completed(core, s, id);
      } else if (!conn.sendPublish(outbound(q.msg, q.qos, q.retain, q.subIds, id, true), 0)) {
        completed(core, s, id);
      }
    }
  pump(core, s);
}

/** The message outlives this read turn: make sure its payload does not pin a large read chunk. */
export function keep(msg: Routed): void {
  if (msg.owned !== true) {
    msg.payload = ownPayload(msg.payload);
    msg.owned = true;
  }
}
