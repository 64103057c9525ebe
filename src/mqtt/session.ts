/**
 * Session state [MQTT-4.1]: subscriptions, outbound QoS 1/2 messages in flight and queued, inbound QoS 2
 * packet ids awaiting PUBREL, the pending will. Pure state; the broker core moves messages through it.
 */
import type { AuthzSubject } from './hooks.js';
import type { SubEntry, SubOwner } from './router.js';
import type { QueueState } from './store.js';
import type { PublishProperties, Publisher } from './types.js';
import type { Connection } from './connection.js';

/** A message inside the broker. The payload Buffer is shared by every delivery and never mutated. */
export interface Routed {
  readonly topic: string;
  /** May be a view into a read chunk until `owned` (see codec.ownPayload); replaced by a copy when kept. */
  payload: Buffer;
  owned?: boolean;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly properties: PublishProperties | undefined;
  /** Absolute expiry (epoch ms) from Message Expiry Interval [MQTT-3.3.2-5], or null. */
  readonly expiresAt: number | null;
  /** Publishing client id, for No Local; null for platform publishes. */
  readonly origin: string | null;
  readonly publisher: Publisher | null;
  /** performance.now() when the PUBLISH was read, for the latency histogram. */
  readonly ingress: number;
  /** Encoded QoS 0 / RETAIN 0 / no-property PUBLISH shared by all 3.1.1 (enc4) or v5 (enc5) receivers. */
  enc4?: Buffer | undefined;
  enc5?: Buffer | undefined;
}

/** One outbound QoS 1/2 delivery to one session. */
export interface Queued {
  readonly seq: number;
  readonly msg: Routed;
  readonly qos: 1 | 2;
  /** RETAIN flag as delivered (retain-as-published or retained replay). */
  readonly retain: boolean;
  readonly subIds: number[] | null;
  state: QueueState;
  packetId: number;
  /** True once an `enqueue` op for it was sent to the store. */
  persisted: boolean;
}

export interface WillSpec {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly properties: PublishProperties | undefined;
  /** Will Delay Interval in seconds [MQTT-3.1.3-9]. */
  readonly delay: number;
}

/** A will waiting for its Will Delay Interval (see will.ts), with who set it. */
export interface PendingWill {
  readonly will: WillSpec;
  readonly publisher: Publisher;
  /** Authorizes it when it fires; null for a will restored from the store (authorized when stored). */
  readonly subject: AuthzSubject | null;
  /** Epoch ms. */
  readonly fireAt: number;
}

export class Session implements SubOwner {
  readonly kind = 'session' as const;
  // subs and inflight are allocated on first use: an idle session (most of them, at scale) never needs
  // either, and two empty Maps cost ~0.4 KB of heap each session (measured with a heap snapshot).
  private subsMap: Map<string, SubEntry<Session>> | null = null;
  private inflightMap: Map<number, Queued> | null = null;

  /** Subscriptions by the filter string the client sent. */
  get subs(): Map<string, SubEntry<Session>> {
    return (this.subsMap ??= new Map());
  }

  /** Outbound messages sent and awaiting PUBACK/PUBREC/PUBCOMP, by packet id. Insertion order = send order. */
  get inflight(): Map<number, Queued> {
    return (this.inflightMap ??= new Map());
  }

  /** Number of subscriptions, without allocating the map. */
  get subCount(): number {
    return this.subsMap?.size ?? 0;
  }

  /** Number of in-flight messages, without allocating the map. */
  get inflightCount(): number {
    return this.inflightMap?.size ?? 0;
  }
  /** Outbound QoS 1/2 messages waiting for the connection or for room in the in-flight window. */
  queue: Queued[] = [];
  /** Inbound QoS 2 packet ids received and not yet released [MQTT-4.3.3-9]. Lazily allocated. */
  incomingQos2: Set<number> | null = null;
  /** True while the store holds a non-empty set of this session's inbound QoS 2 ids. */
  qos2Stored = false;
  conn: Connection | null = null;
  /** The last authenticated subject, for receive authorization while offline. */
  subject: AuthzSubject | null = null;
  expiryTimer: NodeJS.Timeout | null = null;
  willTimer: NodeJS.Timeout | null = null;
  pendingWill: PendingWill | null = null;
  /** True while the store holds the pending will. */
  willStored = false;
  /** True once the session has rows in the store (persisted sessions, or ones that were). */
  stored = false;
  disconnectedAt: number | null = null;
  seq = 0;
  private nextPacketId = 1;

  // Per-publish aggregation scratch (overlapping subscriptions deliver once with the highest QoS and all
  // subscription identifiers [MQTT-3.3.4-2, MQTT-3.3.4-3]). Valid only while `stamp` equals the router's.
  stamp = 0;
  aggQos: 0 | 1 | 2 = 0;
  aggRap = false;
  aggSubIds: number[] | null = null;

  constructor(
    readonly clientId: string,
    public protocolVersion: number,
    /** Session Expiry Interval in seconds; 0 ends the session with the connection. */
    public expiryInterval: number,
  ) {}

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** A packet id not in use by an in-flight message [MQTT-2.2.1-3]. */
  allocatePacketId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflightMap?.has(id)) return id;
    }
    return 0;
  }

  clearTimers(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.willTimer) clearTimeout(this.willTimer);
    this.expiryTimer = null;
    this.willTimer = null;
  }
}
