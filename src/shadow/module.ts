import type { StartedContext } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { ChangeChannel } from '../events/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { Database } from '../store/index.js';
import { shadowOperations } from './api.js';
import { createShadowFleetIndex, type ShadowFleetIndex } from './fleet-index.js';
import { SHADOW_FILTERS, shadowRequestHandler } from './mqtt.js';
import { createShadowService, type ShadowService, type ShadowVersionRecord } from './service.js';
import { createShadowStore } from './store-sql.js';

/** What the shadow context gives the platform. */
export interface Shadows {
  readonly service: ShadowService;
  /** Shadow fields for fleet search (the registry's field provider). */
  readonly fleetIndex: ShadowFleetIndex;
}

/**
 * Start the shadow context: the store, the service, its broker service on the shadow request topics, its
 * HTTP data-plane operations, the fleet-index fields, and the housekeeping (a deleted thing's shadows go;
 * tombstones past 48 h are purged hourly).
 */
export async function startShadows(options: {
  readonly db: Database;
  readonly config: Config;
  readonly broker: Broker;
  readonly events: ChangeChannel;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Fleet indexing settings (the registry's indexing configuration). */
  readonly indexing: { enabled(): boolean; indexNamed(name: string): boolean };
  /** History of accepted versions (the time-series store), when `shadow.history` is on. */
  readonly history?: (record: ShadowVersionRecord) => void;
  /** Cluster mode: the hourly purge runs only on the node holding `shadow.purge`. */
  readonly runsHere?: ((task: string) => boolean) | undefined;
}): Promise<StartedContext<Shadows>> {
  const { broker, events, logger } = options;
  const c = options.config.shadow;
  const store = await createShadowStore(options.db);
  const publish = (topic: string, body: Record<string, unknown>) =>
    broker.publish({ topic, payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: false });
  const service = createShadowService({
    store,
    publisher: { publish },
    events,
    logger,
    metrics: options.metrics,
    limits: {
      maxStateBytes: c.maxStateBytes,
      maxDepth: c.maxDepth,
      maxUpdatesPerSecondPerThing: c.maxUpdatesPerSecondPerThing,
      maxInFlightPerConnection: c.maxInFlightPerConnection,
      tombstoneMs: c.tombstoneMs,
      cacheEntries: c.cacheEntries,
    },
    ...(c.history && options.history ? { onVersion: options.history } : {}),
  });
  const handler = shadowRequestHandler(service, publish);
  const registration = broker.registerService({
    name: 'shadow',
    filters: SHADOW_FILTERS,
    handle: (request) => handler.handle(request),
    onDrop: (request) => handler.onDrop(request),
    queue: { maxItems: c.queueSize, concurrency: c.concurrency },
  });
  const fleetIndex = await createShadowFleetIndex({
    store,
    events,
    peek: (thing, name) => service.peek(thing, name),
    enabled: () => options.indexing.enabled(),
    indexNamed: (name) => options.indexing.indexNamed(name),
    onError: (err) => logger.warn({ err }, 'shadow fleet index update failed'),
  });
  // A deleted thing takes its shadows along (every process does it; it is idempotent).
  const unsubscribe = events.subscribe(['thing'], async (event) => {
    if (event.kind === 'thing' && event.deleted) await service.deleteThing(event.name);
  });
  const purge = setInterval(() => {
    if (options.runsHere?.('shadow.purge') === false) return;
    service.purge().catch((err: unknown) => logger.warn({ err }, 'shadow tombstone purge failed'));
  }, 3_600_000);
  purge.unref();
  return {
    name: 'shadow',
    service: { service, fleetIndex },
    operations: shadowOperations(service),
    async close() {
      clearInterval(purge);
      unsubscribe();
      fleetIndex.close();
      await registration.unregister();
      await service.close();
    },
  };
}
