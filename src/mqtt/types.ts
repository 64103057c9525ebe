import type { Core } from './core.js';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { Database } from '../store/index.js';
import type { AuthHooks, ConnectionInfo, Principal, UsageMeter } from './hooks.js';
import type { MqttStore } from './store.js';
import type { ReservedTopicService, ServiceRegistration } from './services.js';

/** A message as the broker routes it. The payload Buffer is owned by the message once published. */
export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  /** MQTT 5 publish properties carried end to end (user properties, content type, response topic, ...). */
  readonly properties?: PublishProperties | undefined;
}

export interface PublishProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

/** Who published a message, for rules (clientid(), principal()) and lifecycle. */
export interface Publisher {
  readonly clientId: string;
  readonly principal: Principal;
}

export type InternalHandler = (message: Message, publisher: Publisher | null) => void;

export interface BrokerOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly db: Database;
  readonly hooks: AuthHooks;
  /** Storage for sessions and retained messages; defaults to the SQLite/PostgreSQL store on `db`. */
  readonly store?: MqttStore | undefined;
  /** Usage metering and quotas (src/metering); absent when metering.enabled=false. */
  readonly meter?: UsageMeter | undefined;
  /**
   * Cluster mode (src/cluster): attached at start, after retained messages are loaded and instead of
   * loading every stored session (a node holds only the sessions it owns).
   */
  readonly cluster?: { attach(core: Core, store: MqttStore): Promise<void> } | undefined;
}

/** Live state of one connected client, as the API and console see it. */
export interface ClientSummary {
  readonly clientId: string;
  readonly principal: Principal;
  readonly protocolVersion: number;
  readonly transport: ConnectionInfo['transport'];
  readonly remoteAddress: string;
  readonly connectedAt: number;
  readonly subscriptions: number;
}

export interface Broker {
  /** Load persisted sessions and retained messages. Call before accepting connections. */
  start(): Promise<void>;
  /** Serve one MQTT connection over any duplex stream (TCP, TLS, WebSocket, in-memory pair). */
  handleConnection(stream: Duplex, info: ConnectionInfo): void;
  /**
   * Publish from inside the platform (HTTP data plane, rules republish, shadow and jobs services).
   * Hot path contract: routing is synchronous; durable writes for retained/QoS>0 persistent sessions are batched.
   * Throws ThingsteadError('InvalidRequest') for a topic that is not a valid topic name (empty, wildcard, NUL)
   * and for properties that would not encode (checkPublishProperties), or that carry a topic alias or a
   * subscription identifier (per-delivery properties).
   * No policy check and no topic size/level limit apply: callers authorize. The payload Buffer is owned by the
   * broker from here on (never mutate it afterwards).
   */
  publish(message: Message, publisher?: Publisher | null): void;
  /**
   * `publish`, then resolve once every store write it caused (retained, queued for offline sessions) is
   * committed; reject with ServiceUnavailable when that write fails. For publishes that promise
   * durability to someone (a device's QoS 1 over HTTPS).
   */
  publishDurably(message: Message, publisher?: Publisher | null): Promise<void>;
  /**
   * Receive every message matching `filter` (MQTT wildcard semantics); returns an unsubscribe.
   * Hot path contract: handlers run synchronously on the routing path, for every match, so they must only
   * take what they need and enqueue (the rules engine pushes onto its WorkQueue); anything that does work
   * belongs on a queue, and a reserved-topic service belongs in `registerService`. Kept synchronous on
   * purpose: the rules' per-message cost is a push, and a second hop through a queue would only add one.
   */
  subscribeInternal(filter: string, handler: InternalHandler): () => void;
  /**
   * Deliver a message to one client's session only, as the platform (reference §8.1: jobs replies go only
   * to the requesting client, even if it never subscribed, and never pass through routing: no other
   * subscriber, internal subscriber, rule, retained store or bus sees them). The receiver's iot:Receive is
   * still checked (delivery.ts); QoS 1 is queued like any delivery when the window is full or the
   * persistent session is offline. Returns false when no session exists for `clientId`. Throws
   * InvalidRequest for an invalid topic name. Takes ownership of the payload.
   * @example broker.deliverTo(request.publisher.clientId, { topic: `${request.topic}/accepted`, payload, qos: 1, retain: false })
   */
  deliverTo(clientId: string, message: Message): boolean;
  /**
   * Serve reserved topics (shadow, jobs, ...): a client's PUBLISH matching one of `service.filters` is
   * routed as usual and also handed to `service.handle` on the service's bounded queue, off the routing
   * path; the service answers as the platform with `publish`. Throws InvalidRequest for a duplicate name or
   * a filter outside a `$` namespace or inside a broker-owned one (`$aws/events/#`). See services.ts.
   */
  registerService(service: ReservedTopicService): ServiceRegistration;
  /** Re-run authorizeConnection for every live connection (after a policy or certificate change). */
  reauthorize(): void;
  /**
   * First step of a shutdown: close every client connection (v5 DISCONNECT 0x8B Server shutting down) and
   * refuse new ones, while platform publishes, internal subscribers and store writes keep working until
   * `close()`. Call it before closing anything that consumes routed messages (the rules engine): a client
   * PUBLISH is acknowledged once routed in memory (core.ts durability contract), so one acknowledged after
   * the rules engine stopped taking messages would be lost without a trace. Wills stay pending, as in close().
   */
  stopClients(): void;
  /** Disconnect every live connection matching the predicate (v5 reason code, e.g. 0x87 or 0x98). */
  disconnectWhere(predicate: (client: ClientSummary) => boolean, reasonCode: number): number;
  /** Connected client ids, for connectivity.connected in fleet search and the console. */
  isConnected(clientId: string): boolean;
  clients(): ClientSummary[];
  /** Retained message lookup for the data plane's GetRetainedMessage/ListRetainedMessages. */
  retained(topic: string): (Message & { lastModifiedTime: number }) | undefined;
  listRetained(): Array<Message & { lastModifiedTime: number }>;
  /**
   * One page of retained messages after listing position `after` (0: the first page) and the position of
   * the next page (null: none), without copying the store (RetainedStore.page). For ListRetainedMessages.
   */
  retainedPage(
    after: number,
    limit: number,
  ): { messages: Array<Message & { lastModifiedTime: number }>; next: number | null };
  /** Problems for /healthz (e.g. the store failing to write); empty when healthy. */
  health(): string[];
  /** Stop accepting, disconnect clients (sending will messages only where the spec says so), flush stores. */
  close(): Promise<void>;
}
