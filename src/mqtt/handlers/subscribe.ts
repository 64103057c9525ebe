/**
 * SUBSCRIBE / UNSUBSCRIBE [MQTT-3.8, MQTT-3.10]: per-filter validation and authorization, subscription
 * options (QoS, No Local, Retain As Published, Retain Handling), Subscription Identifiers, shared
 * subscriptions, retained-message replay, and lifecycle events.
 */
import type { ISubscribePacket, IUnsubscribePacket, ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import type { SubEntry } from '../router.js';
import type { Session } from '../session.js';
import { checkTopicFilter, parseShared } from '../topics.js';
import { safe } from '../authorize.js';
import { RC } from '../reason-codes.js';
import { replayRetained } from '../retained-replay.js';

/**
 * Subscriptions one session may hold (memory bound against subscribe floods; beyond it 0x97 Quota
 * exceeded / 0x80). Not in config.limits yet; AWS documents 50 per connection [U].
 */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 10_000;

export function handleSubscribe(conn: Connection, p: ISubscribePacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'SUBSCRIBE before CONNACK');
  // [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]) at least one topic filter: without one it is a Protocol Error
  // (v5 DISCONNECT 0x82; 3.1.1 closes the connection).
  if (p.subscriptions.length === 0)
    return conn.protocolError(RC.PROTOCOL_ERROR, 'SUBSCRIBE without topic filters');
  const core = conn.core;
  const v5 = conn.version === 5;
  const s = conn.session!;
  const subId = v5 ? p.properties?.subscriptionIdentifier : undefined;
  // [MQTT-5.0 §3.8.2.1.2] Subscription Identifier 0 is a protocol error (also refused by the codec).
  if (subId === 0) return conn.protocolError(RC.PROTOCOL_ERROR, 'subscription identifier 0');
  const maxFilters = core.config.limits.maxFiltersPerSubscribe;
  const granted: number[] = [];
  const added: Array<{ entry: SubEntry<Session>; isNew: boolean }> = [];
  const topics: string[] = [];
  let quotaReason: string | null = null;
  // AWS meters a SUBSCRIBE by the bytes of its topic filters (pricing "additional metering details").
  if (conn.usage !== null) {
    let bytes = 0;
    for (const sub of p.subscriptions) bytes += Buffer.byteLength(sub.topic);
    conn.usage.controlIn(bytes);
  }

  for (let i = 0; i < p.subscriptions.length; i++) {
    const sub = p.subscriptions[i]!;
    // 3.1.1 SUBACK has one failure code, 0x80 Failure [MQTT-3.9.3], the value of v5 Unspecified error.
    const fail = (v5code: number) => granted.push(v5 ? v5code : RC.UNSPECIFIED_ERROR);
    if (i >= maxFilters) {
      // AWS §11: 8 filters per SUBSCRIBE; the extra ones are refused (v5 0x97 Quota exceeded).
      fail(RC.QUOTA_EXCEEDED);
      continue;
    }
    const full = sub.topic;
    const shared = parseShared(full);
    if (shared === 'invalid') {
      fail(RC.TOPIC_FILTER_INVALID);
      continue;
    }
    if (shared && sub.nl) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      return conn.protocolError(RC.PROTOCOL_ERROR, 'no local on a shared subscription');
    }
    if (checkTopicFilter(shared ? shared.filter : full, core.topicLimits) !== null) {
      fail(RC.TOPIC_FILTER_INVALID); // [MQTT-5.0 §3.9.3] Topic Filter invalid / 3.1.1 0x80
      continue;
    }
    if (!safe(() => core.hooks.authorizeSubscribe(conn.subject!, full))) {
      fail(RC.NOT_AUTHORIZED);
      continue;
    }
    if (!s.subs.has(full) && s.subs.size >= MAX_SUBSCRIPTIONS_PER_SESSION) {
      fail(RC.QUOTA_EXCEEDED);
      continue;
    }
    // The subscriptions quota of the thing (src/metering): 0x97 with the reason string on the SUBACK.
    const refused =
      conn.usage !== null && !s.subs.has(full) ? conn.usage.admitSubscriptions(s.subs.size + 1) : null;
    if (refused !== null) {
      quotaReason = refused;
      fail(RC.QUOTA_EXCEEDED);
      continue;
    }
    const qos = sub.qos;
    const entry: SubEntry<Session> = {
      owner: s,
      filter: full,
      qos,
      nl: v5 ? (sub.nl ?? false) : false,
      rap: v5 ? (sub.rap ?? false) : false,
      rh: v5 ? (sub.rh ?? 0) : 0,
      subId,
    };
    const isNew = core.addSubscription(s, entry);
    added.push({ entry, isNew });
    topics.push(full);
    granted.push(qos); // QoS 2 is supported: granted as requested [MQTT-5.0 §3.9.3]
  }

  const suback: ISubackPacket = { cmd: 'suback', messageId: p.messageId!, granted };
  if (quotaReason !== null && v5 && conn.problemInfo) suback.properties = { reasonString: quotaReason };
  conn.sendPacket(suback);

  // Retained messages after the SUBACK [MQTT-3.3.1-9..11]: rh 0 always, rh 1 only for a new
  // subscription, rh 2 never; never for shared subscriptions [MQTT-5.0 §4.8.2]. Delivered in bounded chunks
  // across event-loop turns (retained-replay.ts), so a wide filter does not block other clients.
  const replay: SubEntry<Session>[] = [];
  for (const { entry, isNew } of added) {
    if (entry.rh === 2 || (entry.rh === 1 && !isNew) || entry.filter.startsWith('$share/')) continue;
    replay.push(entry);
  }
  replayRetained(conn, replay);
  core.lifecycle.subscriptions(lifecycleSubject(conn), 'subscribed', topics);
}

export function handleUnsubscribe(conn: Connection, p: IUnsubscribePacket): void {
  if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'UNSUBSCRIBE before CONNACK');
  // [MQTT-3.10.3-2] at least one topic filter (3.1.1 [MQTT-3.10.3-2]: a protocol violation, closed).
  if (p.unsubscriptions.length === 0)
    return conn.protocolError(RC.PROTOCOL_ERROR, 'UNSUBSCRIBE without topic filters');
  const core = conn.core;
  const s = conn.session!;
  const codes: number[] = [];
  const topics: string[] = [];
  for (const filter of p.unsubscriptions) {
    const removed = core.removeSubscription(s, filter);
    // [MQTT-5.0 §3.11.3] v5: 0x11 No subscription existed.
    codes.push(removed ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
    if (removed) topics.push(filter);
  }
  const unsuback: IUnsubackPacket = { cmd: 'unsuback', messageId: p.messageId!, granted: codes };
  conn.sendPacket(unsuback);
  core.lifecycle.subscriptions(lifecycleSubject(conn), 'unsubscribed', topics);
}

function lifecycleSubject(conn: Connection) {
  return {
    clientId: conn.clientId,
    sessionIdentifier: conn.sessionIdentifier,
    principalId: conn.principal?.id ?? '',
    ipAddress: conn.info.remoteAddress,
  };
}
