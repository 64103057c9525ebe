/**
 * The MQTT context's storage interface: persistent sessions (subscriptions, queued QoS 1/2 messages,
 * inbound QoS 2 packet ids awaiting PUBREL, a pending delayed will) and retained messages. Two implementations (sqlite-store.ts, pg-store.ts) share one contract suite.
 *
 * Contract: writes arrive as batches of operations applied in one transaction, in order (`apply`). The
 * broker collects them off the hot path and flushes once per event-loop turn; see durability in broker.ts.
 */
import type { Migration } from '../store/index.js';
import type { ConnectionInfo, Principal } from './hooks.js';
import type { PublishProperties } from './types.js';

export interface StoredMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly properties?: PublishProperties | undefined;
  /** Absolute expiry (epoch ms) from the Message Expiry Interval, or null. */
  readonly expiresAt: number | null;
}

export interface StoredSubscription {
  readonly filter: string;
  readonly qos: 0 | 1 | 2;
  readonly nl: boolean;
  readonly rap: boolean;
  readonly rh: number;
  readonly subId: number | undefined;
}

/** Delivery state of a queued message: 0 not sent yet, 1 PUBLISH sent, 2 PUBREC received (PUBREL due). */
export type QueueState = 0 | 1 | 2;

export interface StoredQueued {
  readonly seq: number;
  readonly message: StoredMessage;
  readonly state: QueueState;
  readonly packetId: number | null;
}

/** The parts of a connection's info a stored will keeps, for policy variables when it is authorized. */
export type StoredConnectionInfo = Pick<
  ConnectionInfo,
  'transport' | 'remoteAddress' | 'remotePort' | 'localPort'
>;

/** A delayed will [MQTT-3.1.3-9] waiting for its time, with who set it (it is authorized when it fires). */
export interface StoredWill {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly properties?: PublishProperties | undefined;
  /** Epoch ms at which it is published unless the client resumes the session first. */
  readonly fireAt: number;
  readonly principal: Principal;
  readonly info: StoredConnectionInfo;
}

export interface StoredSession {
  readonly clientId: string;
  readonly protocolVersion: number;
  /** Seconds. */
  readonly expiryInterval: number;
  /** Epoch ms of the last disconnect, or null while it was connected (crash). */
  readonly disconnectedAt: number | null;
  readonly subscriptions: StoredSubscription[];
  readonly queue: StoredQueued[];
  /** Inbound QoS 2 packet ids received and not yet released by PUBREL [MQTT-4.3.3-9]. */
  readonly incomingQos2?: number[] | undefined;
  /** The pending delayed will, if any. */
  readonly will?: StoredWill | null | undefined;
}

export interface StoredRetained extends StoredMessage {
  readonly modifiedAt: number;
  /** Client id that last set it (counts against its `limits.maxRetainedPerClient`); null for the platform. */
  readonly owner?: string | null;
}

export type StoreOp =
  | {
      readonly op: 'session';
      readonly clientId: string;
      readonly protocolVersion: number;
      readonly expiryInterval: number;
      readonly disconnectedAt: number | null;
    }
  | { readonly op: 'deleteSession'; readonly clientId: string }
  | { readonly op: 'subscribe'; readonly clientId: string; readonly sub: StoredSubscription }
  | { readonly op: 'unsubscribe'; readonly clientId: string; readonly filter: string }
  | {
      readonly op: 'enqueue';
      readonly clientId: string;
      readonly seq: number;
      readonly message: StoredMessage;
      readonly state: QueueState;
      readonly packetId: number | null;
    }
  | { readonly op: 'dequeue'; readonly clientId: string; readonly seq: number }
  /** Replace the session's inbound QoS 2 packet ids awaiting PUBREL (empty: none). */
  | { readonly op: 'qos2'; readonly clientId: string; readonly packetIds: readonly number[] }
  /** Set (or with null, delete) the session's pending delayed will. */
  | { readonly op: 'will'; readonly clientId: string; readonly will: StoredWill | null }
  | { readonly op: 'retain'; readonly message: StoredRetained }
  | { readonly op: 'unretain'; readonly topic: string };

export interface MqttStore {
  /** Run migrations. */
  init(): Promise<void>;
  loadSessions(): Promise<StoredSession[]>;
  /** One session (cluster hand-over and adoption read it when it moves to this node); stores shared by nodes. */
  loadSession?(clientId: string): Promise<StoredSession | null>;
  loadRetained(): Promise<StoredRetained[]>;
  /** Apply the operations in one transaction, in order. */
  apply(ops: readonly StoreOp[]): Promise<void>;
}

export const MQTT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'mqtt sessions, subscriptions, queued messages, retained messages',
    sqlite: `
      CREATE TABLE mqtt_sessions (client_id TEXT PRIMARY KEY, protocol_version INTEGER NOT NULL,
        expiry_interval INTEGER NOT NULL, disconnected_at INTEGER);
      CREATE TABLE mqtt_subscriptions (client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL,
        nl INTEGER NOT NULL, rap INTEGER NOT NULL, rh INTEGER NOT NULL, sub_id INTEGER,
        PRIMARY KEY (client_id, filter));
      CREATE TABLE mqtt_queue (client_id TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
        payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties TEXT,
        expires_at INTEGER, state INTEGER NOT NULL, packet_id INTEGER, PRIMARY KEY (client_id, seq));
      CREATE TABLE mqtt_retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL,
        properties TEXT, expires_at INTEGER, modified_at INTEGER NOT NULL);`,
    postgres: `
      CREATE TABLE mqtt_sessions (client_id TEXT PRIMARY KEY, protocol_version INTEGER NOT NULL,
        expiry_interval BIGINT NOT NULL, disconnected_at BIGINT);
      CREATE TABLE mqtt_subscriptions (client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL,
        nl BOOLEAN NOT NULL, rap BOOLEAN NOT NULL, rh INTEGER NOT NULL, sub_id INTEGER,
        PRIMARY KEY (client_id, filter));
      CREATE TABLE mqtt_queue (client_id TEXT NOT NULL, seq BIGINT NOT NULL, topic TEXT NOT NULL,
        payload BYTEA NOT NULL, qos INTEGER NOT NULL, retain BOOLEAN NOT NULL, properties TEXT,
        expires_at BIGINT, state INTEGER NOT NULL, packet_id INTEGER, PRIMARY KEY (client_id, seq));
      CREATE TABLE mqtt_retained (topic TEXT PRIMARY KEY, payload BYTEA NOT NULL, qos INTEGER NOT NULL,
        properties TEXT, expires_at BIGINT, modified_at BIGINT NOT NULL);`,
  },
  {
    version: 2,
    description: 'mqtt retained message owner (per-client retained quota survives restart)',
    sqlite: `ALTER TABLE mqtt_retained ADD COLUMN owner TEXT;`,
    postgres: `ALTER TABLE mqtt_retained ADD COLUMN owner TEXT;`,
  },
  {
    version: 3,
    description:
      'mqtt inbound QoS 2 packet ids awaiting PUBREL and pending delayed wills (survive a restart)',
    sqlite: `
      CREATE TABLE mqtt_qos2 (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,
        PRIMARY KEY (client_id, packet_id));
      CREATE TABLE mqtt_wills (client_id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
        qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties TEXT, fire_at INTEGER NOT NULL,
        principal TEXT NOT NULL, info TEXT NOT NULL);`,
    postgres: `
      CREATE TABLE mqtt_qos2 (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,
        PRIMARY KEY (client_id, packet_id));
      CREATE TABLE mqtt_wills (client_id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload BYTEA NOT NULL,
        qos INTEGER NOT NULL, retain BOOLEAN NOT NULL, properties TEXT, fire_at BIGINT NOT NULL,
        principal TEXT NOT NULL, info TEXT NOT NULL);`,
  },
];

/** A stored will's principal and connection info from their JSON text (null when damaged). */
export function decodeWillParty(
  principal: unknown,
  info: unknown,
): { principal: Principal; info: StoredConnectionInfo } | null {
  try {
    const p = JSON.parse(String(principal)) as Principal;
    const i = JSON.parse(String(info)) as StoredConnectionInfo;
    if (typeof p?.id !== 'string' || typeof p.kind !== 'string' || typeof i?.remoteAddress !== 'string')
      return null;
    return { principal: p, info: i };
  } catch {
    return null;
  }
}

/** The JSON text of a will's principal and connection info. */
export function encodeWillParty(w: StoredWill): { principal: string; info: string } {
  const { transport, remoteAddress, remotePort, localPort } = w.info;
  return {
    principal: JSON.stringify(w.principal),
    info: JSON.stringify({ transport, remoteAddress, remotePort, localPort }),
  };
}

/** Properties as JSON text; correlation data (a Buffer) travels as base64. */
export function encodeProperties(p: PublishProperties | undefined): string | null {
  if (!p) return null;
  const { correlationData, ...rest } = p;
  return JSON.stringify(
    correlationData ? { ...rest, correlationData: correlationData.toString('base64') } : rest,
  );
}

/**
 * Properties from their JSON text. Text that does not parse (a damaged row, an older format) yields an
 * object with the unknown key `undecodable`, so the loader's property check drops and counts the message
 * instead of failing the whole load.
 */
export function decodeProperties(text: unknown): PublishProperties | undefined {
  if (typeof text !== 'string' || text === '') return undefined;
  let raw: PublishProperties & { correlationData?: string };
  try {
    raw = JSON.parse(text) as PublishProperties & { correlationData?: string };
  } catch {
    return { undecodable: text } as PublishProperties;
  }
  if (typeof raw !== 'object' || raw === null) return { undecodable: text } as PublishProperties;
  const { correlationData, ...rest } = raw;
  return correlationData !== undefined
    ? { ...rest, correlationData: Buffer.from(correlationData, 'base64') }
    : rest;
}
