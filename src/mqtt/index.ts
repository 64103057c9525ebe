/**
 * The MQTT 3.1.1 / 5.0 broker: codec, connection, session, topic router, retained messages, wills.
 * Accepts any duplex stream; transports live in `src/transport`.
 *
 * Files by role: broker.ts (the Broker API), core.ts (routing and sessions; hot-path and durability
 * contracts), delivery.ts (QoS windows and delivery to one session), durability.ts (batched store writes),
 * connect-limiter.ts (CONNECTs per client id), connection-log.ts (connect/disconnect log lines),
 * connection.ts (socket I/O, framing, batching, backpressure), handlers/*.ts (one per packet family), codec.ts (mqtt-packet plus measured PUBLISH/ack fast paths), router.ts (topic trie),
 * retained.ts, will.ts, lifecycle.ts (AWS lifecycle events), services.ts (reserved-topic service table),
 * topics.ts (name/filter rules), module.ts (`startBroker`, the context module), bus.ts (cluster seam), store.ts + sqlite-store.ts + pg-store.ts (persistence), metrics.ts,
 * data-plane.ts (the HTTP data plane's Publish and retained-message operations) + data-plane-publish.ts (the HTTP
 * Publish parser, shared with device HTTPS).
 *
 * Imports: errors, observability, store (sessions, queued messages, retained), work (the reserved-topic
 * services' queues); types only from api (the context-module contract) and config. Authentication, authorization and services come in as hooks.
 */
export type {
  Broker,
  BrokerOptions,
  Message,
  Publisher,
  PublishProperties,
  InternalHandler,
  ClientSummary,
} from './types.js';
export {
  anonymousLoopbackHooks,
  type AuthHooks,
  type AuthzSubject,
  type ConnectDecision,
  type ConnectRequest,
  type ConnectionInfo,
  type Principal,
  type EnhancedAuth,
  type EnhancedAuthResult,
  type UsageMeter,
  type ConnectionUsage,
} from './hooks.js';
export { createBroker, createMqttStore } from './broker.js';
export { startBroker } from './module.js';
export type { MqttStore, StoreOp, StoredSession, StoredRetained } from './store.js';
export { topicMatches, checkTopicName, checkTopicFilter } from './topics.js';
export { authorizeClientPublish } from './authorize.js';
export { parseHttpPublish, type HttpPublishLimits, type HttpPublishRequest } from './data-plane-publish.js';
export {
  isBrokerOwned,
  BROKER_OWNED_NAMESPACES,
  type ReservedTopicService,
  type ServiceRequest,
  type ServiceRegistration,
  type ServiceStats,
} from './services.js';
// The cluster seam (src/cluster plugs in here): the core it drives, its bus and session-ownership port,
// and what moves sessions, wills and messages between nodes.
export type { Bus, ClusterPort, ConnectClaim } from './bus.js';
export type { Core, Owner } from './core.js';
export { TopicRouter, type SharedGroup, type SubEntry, type SubOwner } from './router.js';
export type { Routed, PendingWill } from './session.js';
export type { StoredWill } from './store.js';
export { encodeProperties, decodeProperties } from './store.js';
export { publishWill, restoreWill } from './will.js';
export { RC } from './reason-codes.js';
