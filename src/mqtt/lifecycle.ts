/**
 * AWS IoT lifecycle events (reference §8.5), published by the broker through normal routing:
 * `$aws/events/presence/connected|disconnected/{clientId}` and
 * `$aws/events/subscriptions/subscribed|unsubscribed/{clientId}`. Timestamps are epoch ms.
 * Client ids containing `#` or `+` produce no events. A connect and its disconnect share `versionNumber`,
 * which rises per client id and resets after an hour disconnected.
 */
import type { CloseReason } from './connection.js';

export type PublishFn = (topic: string, payload: Buffer) => void;

/** Our close reasons as AWS `disconnectReason` values. */
export const DISCONNECT_REASONS: Record<CloseReason, string> = {
  client_disconnect: 'CLIENT_INITIATED_DISCONNECT',
  duplicate_clientid: 'DUPLICATE_CLIENTID',
  keepalive_timeout: 'MQTT_KEEP_ALIVE_TIMEOUT',
  connection_lost: 'CONNECTION_LOST',
  protocol_error: 'CLIENT_ERROR',
  packet_too_large: 'CLIENT_ERROR',
  not_authorized: 'FORBIDDEN_ACCESS',
  auth_error: 'AUTH_ERROR',
  slow_consumer: 'THROTTLED',
  connect_timeout: 'CONNECTION_LOST',
  connect_throttled: 'THROTTLED',
  message_rate_too_high: 'THROTTLED',
  server_initiated: 'SERVER_INITIATED_DISCONNECT',
  server_shutdown: 'SERVER_INITIATED_DISCONNECT',
};

const RESET_AFTER_MS = 3_600_000;
const MAX_TRACKED = 200_000;

export interface LifecycleSubject {
  readonly clientId: string;
  readonly sessionIdentifier: string;
  readonly principalId: string;
  readonly ipAddress: string;
  readonly thingName?: string | undefined;
}

export class Lifecycle {
  /** Per client id: current version number and when it last disconnected. */
  private readonly versions = new Map<string, { version: number; disconnectedAt: number | null }>();

  constructor(private readonly publish: PublishFn) {}

  private static silent(clientId: string): boolean {
    return clientId.includes('#') || clientId.includes('+');
  }

  connected(s: LifecycleSubject): void {
    if (Lifecycle.silent(s.clientId)) return;
    const now = Date.now();
    let v = this.versions.get(s.clientId);
    if (!v || (v.disconnectedAt !== null && now - v.disconnectedAt > RESET_AFTER_MS)) {
      if (this.versions.size >= MAX_TRACKED) this.prune(now);
      v = { version: v ? 0 : 0, disconnectedAt: null };
      this.versions.set(s.clientId, v);
    } else {
      v.version++;
      v.disconnectedAt = null;
    }
    this.emit(`$aws/events/presence/connected/${s.clientId}`, {
      clientId: s.clientId,
      timestamp: now,
      eventType: 'connected',
      sessionIdentifier: s.sessionIdentifier,
      principalIdentifier: s.principalId,
      ipAddress: s.ipAddress,
      versionNumber: v.version,
    });
  }

  disconnected(s: LifecycleSubject, reason: CloseReason): void {
    if (Lifecycle.silent(s.clientId)) return;
    const now = Date.now();
    const v = this.versions.get(s.clientId);
    if (v) v.disconnectedAt = now;
    this.emit(`$aws/events/presence/disconnected/${s.clientId}`, {
      clientId: s.clientId,
      timestamp: now,
      eventType: 'disconnected',
      sessionIdentifier: s.sessionIdentifier,
      principalIdentifier: s.principalId,
      clientInitiatedDisconnect: reason === 'client_disconnect',
      disconnectReason: DISCONNECT_REASONS[reason],
      versionNumber: v?.version ?? 0,
      ...(s.thingName ? { thingName: s.thingName } : {}),
    });
  }

  subscriptions(s: LifecycleSubject, kind: 'subscribed' | 'unsubscribed', topics: string[]): void {
    if (Lifecycle.silent(s.clientId) || topics.length === 0) return;
    this.emit(`$aws/events/subscriptions/${kind}/${s.clientId}`, {
      clientId: s.clientId,
      timestamp: Date.now(),
      eventType: kind,
      sessionIdentifier: s.sessionIdentifier,
      principalIdentifier: s.principalId,
      topics,
    });
  }

  private emit(topic: string, body: object): void {
    this.publish(topic, Buffer.from(JSON.stringify(body)));
  }

  private prune(now: number): void {
    for (const [id, v] of this.versions) {
      if (v.disconnectedAt !== null && now - v.disconnectedAt > RESET_AFTER_MS) this.versions.delete(id);
    }
    if (this.versions.size >= MAX_TRACKED) {
      for (const [id, v] of this.versions) if (v.disconnectedAt !== null) this.versions.delete(id);
    }
  }
}
