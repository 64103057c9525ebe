import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createAwsApi, createHttpServer, type AwsOperation } from '../api/index.js';
import type { Config } from '../config/index.js';
import { openChangeChannel, type ChangeChannel } from '../events/index.js';
import {
  certificateOperations,
  createDeviceAuth,
  ensureServerTls,
  openCertificateService,
  openCredentialStore,
  startDeviceHttps,
  startEnforcement,
  type CertificateService,
  type CredentialStore,
  type DeviceAuth,
  type DeviceHttps,
  type ServerTls,
} from '../identity/index.js';
import { verifySigV4 } from '../sigv4/index.js';
import { createBroker, type AuthHooks, type Broker } from '../mqtt/index.js';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '../observability/index.js';
import { openPolicyService, policyOperations, type PolicyService } from '../policy/index.js';
import { createRegistry, registryOperations, type ThingRegistry } from '../registry/index.js';
import { openDatabase, type Database } from '../store/index.js';
import { rulesOperations, RulesEngine, startSources } from '../rules/index.js';
import {
  attachTimeseriesTail,
  createTimeseries,
  timeseriesOperations,
  type Timeseries,
} from '../timeseries/index.js';
import { startListeners } from '../transport/index.js';
import {
  certificateAttachments,
  groupMembers,
  policyTargetExists,
  principalDirectory,
  principalResolver,
} from './adapters.js';

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

/** Device certificates, policies and the broker's policy enforcement (src/identity, src/policy). */
export interface PlatformSecurity {
  readonly certificates: CertificateService;
  readonly policies: PolicyService;
  readonly auth: DeviceAuth;
}

export interface Platform {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly db: Database;
  /** Change events between contexts (and, on PostgreSQL, between processes). */
  readonly events: ChangeChannel;
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
  readonly security: PlatformSecurity;
  close(): Promise<void>;
}

const urlHost = (host: string) =>
  host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

/**
 * Start the platform: the one composition root. Contexts start in dependency order, each given only
 * what already exists, and close in the reverse order (a stack):
 *
 *   store -> change events -> policy -> registry -> certificates, access keys -> device auth
 *   -> broker (hooks: device auth; the registry's reserved topics and MQTT events) -> time-series, rules
 *   -> HTTP API (every context's operations) -> listeners, device HTTPS -> live enforcement
 *
 * Contexts learn of each other's writes through change events (src/events), never by polling.
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
  /** Closed last-started first. */
  const stack: Array<() => Promise<void> | void> = [() => db.close()];
  const closeAll = async (report: (err: unknown) => void) => {
    while (stack.length) await Promise.resolve(stack.pop()!()).catch(report);
  };
  try {
    const eventsLog = logger.child({ ctx: 'events' });
    const events = await openChangeChannel(db, {
      onError: (err, event) => eventsLog.warn({ err, event: event?.kind }, 'change event handling failed'),
    });
    stack.push(() => events.close());
    const tls = await ensureServerTls({
      dataDir,
      hostname: config.hostname ?? 'localhost',
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      caFile: config.tls.caFile,
    });
    const scope = { region: config.region, accountId: config.accountId };

    const policies = await openPolicyService({ db, scope, events });
    stack.push(() => policies.close());

    const registryLog = logger.child({ ctx: 'registry' });
    const registry = await createRegistry({
      db,
      events,
      region: config.region,
      accountId: config.accountId,
      endpointAddress: () => config.hostname ?? 'localhost',
      onError: (err) => registryLog.warn({ err }, 'registry event or index error'),
    });
    stack.push(() => registry.close());

    const certificates = await openCertificateService({
      db,
      ca: { certPem: tls.caPem, keyPem: tls.caKeyPem ?? '' },
      scope,
      events,
      registrationCode: async () => (await registry.getRegistrationCode()).registrationCode,
      attachments: certificateAttachments(registry, policies),
    });
    const credentials = await openCredentialStore({ db, dataDir, events });
    const admin = await credentials.ensureAdmin({ region: config.region });
    const auth = createDeviceAuth({
      certificates,
      policies,
      directory: principalDirectory(registry),
      scope,
      logger,
      metrics,
      allowAnonymous: config.mqtt.allowAnonymous,
      accessKeys: credentials,
    });
    if (auth.anonymousAllowsAll()) {
      logger
        .child({ ctx: 'security' })
        .warn(
          'DEV MODE: anonymous loopback clients may publish and subscribe to EVERYTHING until a policy is attached to the target "anonymous" (THINGSTEAD_ALLOW_ANONYMOUS is on)',
        );
    }

    const broker = createBroker({
      config,
      logger: logger.child({ ctx: 'mqtt' }),
      metrics,
      db,
      hooks: options.hooks ?? auth,
    });
    await broker.start();
    stack.push(() => broker.close());
    // The registry as a broker service: connectivity from lifecycle events, its $aws/events out.
    for (const t of registry.reservedTopics)
      stack.push(broker.subscribeInternal(t.filter, (m) => t.handler(m)));
    stack.push(
      registry.onPublish((topic, payload) => broker.publish({ topic, payload, qos: 0, retain: false })),
    );

    const { rules, timeseries } = await startDataPath(config, {
      db,
      events,
      broker,
      logger,
      metrics,
      registry,
      stack,
    });
    const awsOperations: AwsOperation[] = [
      ...registryOperations(registry),
      ...certificateOperations(certificates),
      ...policyOperations(policies, {
        scope,
        resolver: principalResolver(registry, auth),
        targetExists: policyTargetExists(registry, certificates),
      }),
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
    stack.push(() => http.close());

    const listeners = await startListeners({ config, tls, broker, http: http.server, logger, metrics });
    stack.push(() => listeners.close());
    let deviceHttps: DeviceHttps | null = null;
    if (config.deviceHttps.port !== null) {
      const started = await startDeviceHttps({
        host: config.deviceHttps.host,
        port: config.deviceHttps.port,
        tls,
        hooks: auth,
        broker,
        logger,
        metrics,
        events,
      });
      deviceHttps = started;
      stack.push(() => started.close());
    }
    const enforcement = startEnforcement({
      auth,
      broker,
      events,
      certificates,
      policies,
      scope,
      logger,
      onTrustedCas: (pems) => {
        listeners.setTrustedCas(pems);
        deviceHttps?.setTrustedCas(pems);
      },
    });
    stack.push(() => enforcement.close());

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
    stack.push(detachTail);

    const deviceHttpsPort = deviceHttps?.port ?? null;
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
      events,
      broker,
      tls,
      endpoints,
      credentials,
      registry,
      security: { certificates, policies, auth },
      rules,
      timeseries,
      close() {
        closed ??= closeAll((err) => logger.error({ err }, 'error during shutdown'));
        return closed;
      },
    };
  } catch (err) {
    await closeAll(() => undefined);
    throw err;
  }
}

/**
 * The data path: the time-series store, the rules engine on the broker and the configured stream sources.
 * Closing order (the stack): sources, then rules (drains into the outbox), then the time-series writer.
 */
async function startDataPath(
  config: Config,
  o: {
    db: Database;
    events: ChangeChannel;
    broker: Broker;
    logger: Logger;
    metrics: Registry;
    registry: ThingRegistry;
    stack: Array<() => Promise<void> | void>;
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
    resolveGroup: groupMembers(o.registry),
  });
  o.stack.push(() => timeseries.close());
  const r = config.rules;
  const rules = await RulesEngine.start({
    db: o.db,
    events: o.events,
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
  o.stack.push(() => rules.close());
  const sources = await startSources({
    sources: r.sources,
    broker: o.broker,
    logger: o.logger.child({ ctx: 'sources' }),
    natsServers: r.natsServers,
  });
  o.stack.push(async () => void (await Promise.all(sources.map((s) => s.close()))));
  return { rules, timeseries };
}
