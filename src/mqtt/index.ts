/**
 * The MQTT 3.1.1 / 5.0 broker: codec, connection, session, topic router, retained messages, wills.
 * Accepts any duplex stream; transports live in `src/transport`.
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
} from './hooks.js';
export { createBroker, createMqttStore } from './broker.js';
export type { MqttStore, StoreOp, StoredSession, StoredRetained } from './store.js';
export { topicMatches, checkTopicName, checkTopicFilter } from './topics.js';
