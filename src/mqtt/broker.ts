/**
 * The Broker: wires the core (sessions, router, retained, store batching) to connections and exposes the
 * platform-facing API (internal publish/subscribe, client listing, reauthorization, retained lookup).
 * See core.ts for the hot-path and durability contracts.
 */
import type { Duplex } from 'node:stream';
import type { Database } from '../store/index.js';
import { E } from '../errors/index.js';
import type { Broker, BrokerOptions, ClientSummary, Message, Publisher } from './types.js';
import type { ConnectionInfo } from './hooks.js';
import { Core } from './core.js';
import { safe } from './authorize.js';
import { Connection } from './connection.js';
import { createBrokerMetrics } from './metrics.js';
import type { MqttStore } from './store.js';
import { createSqliteMqttStore } from './sqlite-store.js';
import { createPostgresMqttStore } from './pg-store.js';
import { checkTopicFilter, checkTopicName } from './topics.js';
import { checkPublishProperties } from './codec.js';
import { RC } from './reason-codes.js';
import { ServiceTable } from './services.js';
import { deliver } from './delivery.js';

/** The MQTT store for a database handle: SQLite or PostgreSQL by the handle's kind. */
export function createMqttStore(db: Database): MqttStore {
  return db.kind === 'sqlite' ? createSqliteMqttStore(db) : createPostgresMqttStore(db);
}

/**
 * Create the broker. Call `start()` before handing it connections.
 * @example const broker = createBroker({ config, logger, metrics, db, hooks }); await broker.start();
 */
export function createBroker(options: BrokerOptions): Broker {
  const { config, logger } = options;
  const metrics = createBrokerMetrics(options.metrics, () => ({
    sessions: core.sessions.size,
    retained: core.retained.size,
    retainedBytes: core.retained.bytes,
    queued: sum((s) => s.queue.length),
    inflight: sum((s) => s.inflightCount),
    storePending: core.storePending,
  }));
  const store = options.store ?? createMqttStore(options.db);
  const core: Core = new Core(
    config,
    options.hooks,
    metrics,
    logger,
    store,
    new ServiceTable({ logger: logger.child({ ctx: 'mqtt.services' }), metrics: options.metrics }),
  );
  core.meter = options.meter ?? null;
  const sum = (f: (s: import('./session.js').Session) => number) => {
    let n = 0;
    for (const s of core.sessions.values()) n += f(s);
    return n;
  };
  let started = false;

  const summary = (c: Connection): ClientSummary => ({
    clientId: c.clientId,
    principal: c.principal!,
    protocolVersion: c.version,
    transport: c.info.transport,
    remoteAddress: c.info.remoteAddress,
    connectedAt: c.connectedAt,
    subscriptions: c.session?.subCount ?? 0,
  });
  const live = () => [...core.connections].filter((c) => c.state === 'connected');

  return {
    async start() {
      if (started) return;
      started = true;
      await core.load({ sessions: options.cluster === undefined });
      if (options.cluster !== undefined) await options.cluster.attach(core, store);
    },

    handleConnection(stream: Duplex, info: ConnectionInfo) {
      if (core.closing) {
        stream.destroy();
        return;
      }
      const conn = new Connection(core, stream, info);
      core.connections.add(conn);
      metrics.connections.inc();
    },

    publish(message: Message, publisher: Publisher | null = null) {
      // Platform publishes are trusted (already authorized by the API) but must still be valid topics.
      if (checkTopicName(message.topic, { maxTopicBytes: 65535, maxTopicLevels: 1 << 30 }) !== null) {
        throw E.PublishTopicName({ topic: JSON.stringify(message.topic) });
      }
      // Properties must encode for every receiver; topicAlias and subscriptionIdentifier are per hop, set by
      // the broker for each delivery, never by a publisher.
      const props = message.properties as Record<string, unknown> | undefined;
      const why =
        props && (props.topicAlias !== undefined || props.subscriptionIdentifier !== undefined)
          ? 'topicAlias and subscriptionIdentifier are set per delivery, not by the publisher'
          : checkPublishProperties(message.properties);
      if (why !== null) throw E.PublishProperties({ reason: why });
      // Retained: exempt from the per-client cap, not from the totals (limits.maxRetained*).
      const quota = message.retain ? core.retained.admit(null, message.topic, message.payload.length) : null;
      if (quota !== null) {
        metrics.dropped.retained_quota.inc();
        throw E.RetainedQuota({ reason: quota });
      }
      const expiry = message.properties?.messageExpiryInterval;
      core.route({
        topic: message.topic,
        payload: message.payload,
        qos: message.qos,
        retain: message.retain,
        properties: message.properties,
        expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : null,
        origin: publisher?.clientId ?? null,
        publisher,
        ingress: performance.now(),
      });
    },

    publishDurably(message: Message, publisher: Publisher | null = null): Promise<void> {
      const before = core.opsCount;
      this.publish(message, publisher);
      if (core.opsCount === before) return Promise.resolve();
      return new Promise((resolve, reject) =>
        core.afterDurable((failure) =>
          failure === null ? resolve() : reject(E.PublishNotStored({ reason: failure.code })),
        ),
      );
    },

    deliverTo(clientId, message) {
      if (checkTopicName(message.topic, { maxTopicBytes: 65535, maxTopicLevels: 1 << 30 }) !== null) {
        throw E.PublishTopicName({ topic: JSON.stringify(message.topic) });
      }
      const session = core.sessions.get(clientId);
      if (!session) return false;
      const expiry = message.properties?.messageExpiryInterval;
      const routed = {
        topic: message.topic,
        payload: message.payload,
        qos: message.qos,
        retain: false,
        properties: message.properties,
        expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : null,
        origin: null,
        publisher: null,
        ingress: performance.now(),
      };
      deliver(core, session, routed, message.qos, false, null);
      return true;
    },

    subscribeInternal(filter, handler) {
      if (checkTopicFilter(filter, { maxTopicBytes: 65535, maxTopicLevels: 1 << 30 }) !== null) {
        throw E.SubscribeTopicFilter({ filter: JSON.stringify(filter) });
      }
      return core.subscribeInternal(filter, handler);
    },

    registerService(service) {
      return core.services.register(service);
    },

    reauthorize() {
      for (const c of live()) {
        if (!safe(() => options.hooks.authorizeConnection(c.subject!))) {
          c.close('not_authorized', RC.NOT_AUTHORIZED, 'not authorized');
        }
      }
    },

    stopClients() {
      // core.close()'s first step, taken earlier so the platform can close its consumers after it.
      core.closeClients();
    },

    disconnectWhere(predicate, reasonCode) {
      let n = 0;
      for (const c of live()) {
        if (predicate(summary(c))) {
          c.close('server_initiated', reasonCode, 'disconnected by the server');
          n++;
        }
      }
      return n;
    },

    isConnected(clientId) {
      return core.sessions.get(clientId)?.conn?.state === 'connected';
    },

    clients() {
      return live().map(summary);
    },

    retained(topic) {
      const e = core.retained.get(topic);
      return e ? toMessage(e) : undefined;
    },

    listRetained() {
      return core.retained.all().map(toMessage);
    },

    retainedPage(after, limit) {
      const page = core.retained.page(after, limit);
      return { messages: page.entries.map(toMessage), next: page.next };
    },

    health() {
      return core.health();
    },

    async close() {
      // Requests already accepted are handled (their replies still reach connected clients), then the core.
      await core.services.close();
      await core.close();
    },
  };
}

function toMessage(e: import('./retained.js').RetainedEntry): Message & { lastModifiedTime: number } {
  return {
    topic: e.topic,
    payload: e.payload,
    qos: e.qos,
    retain: true,
    properties: e.properties,
    lastModifiedTime: e.modifiedAt,
  };
}
