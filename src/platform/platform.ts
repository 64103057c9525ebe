import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createAwsApi, createHttpServer, type AwsOperation } from '../api/index.js';
import type { Config } from '../config/index.js';
import {
  createDeviceSecurity,
  verifySigV4,
  ensureServerTls,
  openCredentialStore,
  type DeviceSecurity,
  type CredentialStore,
  type ServerTls,
} from '../identity/index.js';
import { createBroker, type AuthHooks, type Broker } from '../mqtt/index.js';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '../observability/index.js';
import { createRegistry, registryOperations, type ThingRegistry } from '../registry/index.js';
import { openDatabase, type Database } from '../store/index.js';
import { rulesOperations, RulesEngine, startSources } from '../rules/index.js';
import {
  attachTimeseriesTail,
  createTimeseries,
  timeseriesOperations,
  type Timeseries,
} from '../timeseries/index.js';
import { startListeners, type Listeners } from '../transport/index.js';

export interface PlatformEndpoints {
  /** Base URL of the HTTP API and console, e.g. http://127.0.0.1:8080 */
  readonly http: string;
  readonly httpPort: number;
  /** mqtt://host:port when plain MQTT is on. */
  readonly mqtt: string | null;
  readonly mqttPort: number | null;
  readonly mqtts: string | null;
  readonly mqttsPort: number | null;
  /** ws://host:port/mqtt */
  readonly ws: string;
  readonly caFile: string;
  readonly dataDir: string;
  /** HTTPS for devices (mutual TLS, POST /topics/{topic}), when `deviceHttps.port` is set. */
  readonly deviceHttps?: string | null;
  readonly deviceHttpsPort?: number | null;
  /** AWS shared-credentials file holding the admin access key ([default] profile). */
  readonly credentialsFile?: string;
}

export interface Platform {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly db: Database;
  readonly broker: Broker;
  readonly tls: ServerTls;
  readonly endpoints: PlatformEndpoints;
  /** Access keys for the AWS-compatible HTTP APIs (SigV4). */
  readonly credentials: CredentialStore;
  /** The device registry (things, types, groups, principals, fleet search). */
  readonly registry: ThingRegistry;
  /** The rules engine (topic rules, actions, outbox). */
  readonly rules: RulesEngine;
  /** The built-in time-series store. */
  readonly timeseries: Timeseries;
  /** Device certificates, policies and the broker's policy enforcement (src/identity, src/policy). */
  readonly security: DeviceSecurity;
  close(): Promise<void>;
}

const urlHost = (host: string) =>
  host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

/**
 * Start the platform: open the store, ensure TLS material, start the broker, the listeners and the API.
 * Writes `<dataDir>/endpoints.json` with the ports actually bound.
 * @example const p = await createPlatform(loadConfig({ overrides: { http: { port: 0 }, mqtt: { port: 0, tlsPort: 0 } } }));
 */
export async function createPlatform(
  config: Config,
  options: { logger?: Logger; hooks?: AuthHooks } = {},
): Promise<Platform> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetricsRegistry({ processMetrics: true });
  const db = await openDatabase({ dataDir, databaseUrl: config.databaseUrl });
  const cleanup: Array<() => Promise<void>> = [() => db.close()];
  try {
    const tls = await ensureServerTls({
      dataDir,
      hostname: config.hostname ?? 'localhost',
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      caFile: config.tls.caFile,
    });
    // Device security is built before the broker (which takes its hooks); registry and access keys come later.
    let registryRef: ThingRegistry | null = null;
    let credentialsRef: CredentialStore | null = null;
    const security = await createDeviceSecurity({
      config,
      db,
      tls,
      logger,
      metrics,
      registry: () => registryRef,
      accessKeys: { lookup: async (id) => credentialsRef?.lookup(id) },
    });
    cleanup.unshift(() => security.close());
    const hooks = options.hooks ?? security.auth;
    const broker = createBroker({ config, logger: logger.child({ ctx: 'mqtt' }), metrics, db, hooks });
    await broker.start();
    cleanup.unshift(() => broker.close());

    const credentials = await openCredentialStore({ db, dataDir });
    const admin = await credentials.ensureAdmin({ region: config.region });
    const registryLog = logger.child({ ctx: 'registry' });
    const registry = await createRegistry({
      db,
      region: config.region,
      accountId: config.accountId,
      isConnected: (thingName) => broker.isConnected(thingName),
      publish: (topic, payload) => broker.publish({ topic, payload, qos: 0, retain: false }),
      endpointAddress: () => config.hostname ?? 'localhost',
      onError: (err) => registryLog.warn({ err }, 'registry event or index error'),
    });
    cleanup.unshift(() => registry.close());
    // Every context's AWS-compatible operations; one dispatcher serves them all (src/api/aws.ts).
    registryRef = registry;
    credentialsRef = credentials;
    const { rules, timeseries } = await startDataPath(config, {
      db,
      broker,
      logger,
      metrics,
      registry,
      cleanup,
    });
    const awsOperations: AwsOperation[] = [
      ...security.operations(registryOperations(registry)),
      ...rulesOperations(rules),
      ...timeseriesOperations(timeseries),
    ];

    const http = createHttpServer({
      logger: logger.child({ ctx: 'api' }),
      metrics,
      health: () => broker.health(),
    });
    http.use(
      createAwsApi({
        operations: awsOperations,
        credentials,
        logger: logger.child({ ctx: 'api' }),
        metrics,
        region: config.region,
        maxBodyBytes: config.limits.maxApiBodyBytes,
        maxJsonDepth: config.limits.maxJsonDepth,
      }),
    );
    const httpAddr = await http.listen(config.http.host, config.http.port);
    cleanup.unshift(() => http.close());

    const listeners: Listeners = await startListeners({
      config,
      tls,
      broker,
      http: http.server,
      logger,
      metrics,
    });
    // Listeners close after the broker has disconnected its clients, before the HTTP server.
    cleanup.splice(1, 0, () => listeners.close());
    const { deviceHttpsPort } = await security.attach(broker, listeners);
    const detachTail = attachTimeseriesTail(http.server, timeseries, async (req) => {
      const [path = '/', query = ''] = (req.url ?? '/').split('?');
      const body = Buffer.alloc(0);
      return verifySigV4(
        { method: req.method ?? 'GET', path, query, headers: req.headers, body },
        (id) => credentials.lookup(id),
        { region: config.region },
      ).then(
        () => true,
        () => false,
      );
    });
    cleanup.unshift(async () => detachTail());

    const httpBase = `http://${urlHost(config.http.host)}:${httpAddr.port}`;
    const endpoints: PlatformEndpoints = {
      http: httpBase,
      httpPort: httpAddr.port,
      mqtt: listeners.mqtt ? `mqtt://${urlHost(listeners.mqtt.host)}:${listeners.mqtt.port}` : null,
      mqttPort: listeners.mqtt?.port ?? null,
      mqtts: listeners.mqtts ? `mqtts://${urlHost(listeners.mqtts.host)}:${listeners.mqtts.port}` : null,
      mqttsPort: listeners.mqtts?.port ?? null,
      ws: `${httpBase.replace(/^http/, 'ws')}${listeners.wsPath}`,
      caFile: tls.caFile,
      dataDir,
      deviceHttps:
        deviceHttpsPort !== null ? `https://${urlHost(config.deviceHttps.host)}:${deviceHttpsPort}` : null,
      deviceHttpsPort,
      credentialsFile: admin.accessKeyId ? admin.file : undefined,
    };
    writeFileSync(join(dataDir, 'endpoints.json'), JSON.stringify(endpoints, null, 2) + '\n', {
      mode: 0o644,
    });
    logger.info({ endpoints }, 'thingstead started');

    let closed: Promise<void> | null = null;
    return {
      config,
      logger,
      metrics,
      db,
      broker,
      tls,
      endpoints,
      credentials,
      registry,
      security,
      rules,
      timeseries,
      close() {
        closed ??= (async () => {
          for (const step of cleanup)
            await step().catch((err: unknown) => logger.error({ err }, 'error during shutdown'));
        })();
        return closed;
      },
    };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}

/**
 * The data path: the time-series store, the rules engine on the broker and the configured stream sources.
 * Closing order (via `cleanup`, first added closes last): sources, then rules (drains into the outbox),
 * then the time-series writer.
 */
async function startDataPath(
  config: Config,
  o: {
    db: Database;
    broker: Broker;
    logger: Logger;
    metrics: Registry;
    registry: ThingRegistry;
    cleanup: Array<() => Promise<void>>;
  },
): Promise<{ rules: RulesEngine; timeseries: Timeseries }> {
  const t = config.timeseries;
  const timeseries = await createTimeseries({
    db: o.db,
    logger: o.logger.child({ ctx: 'timeseries' }),
    metrics: o.metrics,
    writer: { maxBatch: t.maxBatch, flushMs: t.flushMs, maxPending: t.maxPending },
    retention:
      t.rawRetentionMs > 0
        ? {
            rawMaxAgeMs: t.rawRetentionMs,
            rollupStepMs: t.rollupStepMs,
            rollupMaxAgeMs: t.rollupRetentionMs,
            intervalMs: t.retentionIntervalMs,
          }
        : null,
  });
  o.cleanup.unshift(() => timeseries.close());
  timeseries.resolveGroup = async (group) => {
    const things: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await o.registry.listThingsInThingGroup({
        thingGroupName: group,
        recursive: true,
        maxResults: 250,
        nextToken,
      });
      things.push(...page.things);
      nextToken = page.nextToken;
    } while (nextToken);
    return things;
  };
  const r = config.rules;
  const rules = await RulesEngine.start({
    db: o.db,
    broker: o.broker,
    logger: o.logger.child({ ctx: 'rules' }),
    metrics: o.metrics,
    timeseries,
    accountId: config.accountId,
    region: config.region,
    natsServers: r.natsServers,
    postgresUrl: r.postgresUrl,
    queueSize: r.queueSize,
    maxInFlightPerAction: r.maxInFlightPerAction,
    writeAhead: r.writeAhead,
    outbox: r.outbox,
    maxJsonDepth: config.limits.maxJsonDepth,
  });
  o.cleanup.unshift(() => rules.close());
  const sources = await startSources({
    sources: r.sources,
    broker: o.broker,
    logger: o.logger.child({ ctx: 'sources' }),
    natsServers: r.natsServers,
  });
  o.cleanup.unshift(async () => void (await Promise.all(sources.map((s) => s.close()))));
  return { rules, timeseries };
}
