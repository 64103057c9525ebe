import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startHttpApi, type ContextModule } from '../api/index.js';
import type { Config } from '../config/index.js';
import { openChangeChannel, type ChangeChannel } from '../events/index.js';
import {
  ensureServerTls,
  startDeviceHttps,
  startEnforcement,
  startIdentity,
  type CertificateService,
  type CredentialStore,
  type DeviceAuth,
  type DeviceHttps,
  type Identity,
  type ServerTls,
} from '../identity/index.js';
import { verifySigV4 } from '../sigv4/index.js';
import { startBroker, type AuthHooks, type Broker } from '../mqtt/index.js';
import {
  startCluster,
  startLeadership,
  clusterRoute,
  CLUSTER_TASKS,
  type ClusterNode,
} from '../cluster/index.js';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '../observability/index.js';
import { startPolicy, type PolicyService } from '../policy/index.js';
import { isShadowIndexed, startRegistry, type FieldProvider, type ThingRegistry } from '../registry/index.js';
import { openDatabase, type Database } from '../store/index.js';
import { startRules, type RulesEngine } from '../rules/index.js';
import { startJobs, type Jobs } from '../jobs/index.js';
import { startExports, startMetering, type Exports, type Metering } from '../metering/index.js';
import { startOta, type Ota } from '../ota/index.js';
import { startProvisioning, type Provisioning } from '../provisioning/index.js';
import { startTags } from '../tags/index.js';
import { shadowDeviceRoute, startShadows, type Shadows } from '../shadow/index.js';
import { attachTimeseriesTail, startTimeseries, type Timeseries } from '../timeseries/index.js';
import { startListeners } from '../transport/index.js';
import { startConsole } from '../console/index.js';
import {
  certificateAttachments,
  groupMembers,
  jobResources,
  policyTargetExists,
  principalDirectory,
  principalResolver,
  taggableResources,
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
  /** wss://host:port/mqtt when `mqtt.wssPort` is set (server certificate only, SigV4 presigned URLs). */
  readonly wss?: string | null;
  readonly wssPort?: number | null;
  /** The ALPN port (x-amzn-mqtt-ca, x-amzn-http-ca, http/1.1 WSS) when `mqtt.alpnPort` is set. */
  readonly alpnPort?: number | null;
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
  /** Jobs: control plane, device side (MQTT, jobs data plane), rollouts and timers. */
  readonly jobs: Jobs;
  /** Firmware files, signed download URLs and MQTT file-delivery streams. */
  readonly ota: Ota;
  /** Fleet provisioning: templates, claims, JITP, RegisterThing, bulk tasks, traces. */
  readonly provisioning: Provisioning;
  /** The built-in time-series store. */
  readonly timeseries: Timeseries;
  /** Usage ledger, quotas, cost report (src/metering) and the Parquet exports. */
  readonly metering: Metering;
  readonly exports: Exports;
  readonly security: PlatformSecurity;
  /** Device shadows (MQTT and HTTP data plane, fleet-index fields). */
  readonly shadows: Shadows;
  close(): Promise<void>;
}

const urlHost = (host: string) =>
  host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

/**
 * Start the platform: the one composition root. Each context exports `start<Context>(deps)` returning a
 * `ContextModule` (src/api): its service, AWS operations, HTTP routes, reserved MQTT topics and `close`.
 * Contexts start here in dependency order, each given only what already exists, and close in the reverse
 * order (the module list is a stack; the wiring between two contexts is closed as its own entry):
 *
 *   store -> change events -> tags -> policy -> registry -> identity (certificates, access keys, device auth)
 *   -> broker (hooks: device auth; every module's reserved topics; the registry's MQTT events)
 *   -> time-series, rules -> HTTP API (every module's operations and routes) -> listeners, device HTTPS
 *   -> live enforcement
 *
 * Contexts learn of each other's writes through change events (src/events), never by polling.
 * Writes `<dataDir>/endpoints.json` with the ports actually bound.
 * @example const p = await createPlatform(loadConfig({ overrides: { http: { port: 0 }, mqtt: { port: 0, tlsPort: 0 } } }));
 */
export async function createPlatform(
  config: Config,
  /** `clock`: the metering clock (tests hold connections for known minutes without waiting them). */
  options: { logger?: Logger; hooks?: AuthHooks; clock?: () => number } = {},
): Promise<Platform> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetricsRegistry({ processMetrics: true });
  const db = await openDatabase({ dataDir, databaseUrl: config.databaseUrl });
  /** Started so far; closed last-started first. */
  const modules: ContextModule[] = [{ name: 'store', close: () => db.close() }];
  const start = async <M extends ContextModule>(module: Promise<M> | M): Promise<M> => {
    const started = await module;
    modules.push(started);
    return started;
  };
  const closeAll = async (report: (err: unknown) => void) => {
    while (modules.length) await Promise.resolve(modules.pop()!.close()).catch(report);
  };
  try {
    const eventsLog = logger.child({ ctx: 'events' });
    const events = await openChangeChannel(db, {
      onError: (err, event) => eventsLog.warn({ err, event: event?.kind }, 'change event handling failed'),
    });
    modules.push({ name: 'events', close: () => events.close() });
    const tls = await ensureServerTls({
      dataDir,
      hostname: config.hostname ?? 'localhost',
      certFile: config.tls.certFile,
      keyFile: config.tls.keyFile,
      caFile: config.tls.caFile,
    });
    const scope = { region: config.region, accountId: config.accountId };

    // Policy's operations ask the registry and identity about principals; both start after policy
    // (identity needs it), so the adapters read them per request, once everything has started.
    const later: {
      registry?: ThingRegistry;
      identity?: Identity;
      policies?: PolicyService;
      rules?: RulesEngine;
      jobs?: Jobs;
      provisioning?: Provisioning;
    } = {};
    const ready = <T>(value: T | undefined): T => {
      if (value === undefined) throw new Error('platform not started');
      return value;
    };
    // Tags of the resources policy, registry, rules and jobs own: stored here, asked about existence per request.
    const tags = (
      await start(
        startTags({
          db,
          scope,
          exists: {
            ...taggableResources(
              () => ready(later.registry),
              () => ready(later.policies),
              () => ready(later.rules),
            ),
            ...jobResources(() => ready(later.jobs)),
            provisioningtemplate: (name) => ready(later.provisioning).templates.exists(name),
          },
        }),
      )
    ).service;
    const policy = await start(
      startPolicy({
        db,
        scope,
        events,
        resolver: principalResolver(
          () => ready(later.registry),
          () => ready(later.identity).auth,
        ),
        targetExists: policyTargetExists(
          () => ready(later.registry),
          () => ready(later.identity).certificates,
        ),
        tags,
      }),
    );
    const policies = policy.service;
    later.policies = policies;

    // Search fields other contexts add once they start (the shadow context's shadow.* fields).
    const fieldProviders: FieldProvider[] = [];
    const registryLog = logger.child({ ctx: 'registry' });
    const registry = (
      await start(
        startRegistry({
          db,
          events,
          region: config.region,
          accountId: config.accountId,
          endpointAddress: () => config.hostname ?? 'localhost',
          fieldProviders,
          tags,
          onError: (err) => registryLog.warn({ err }, 'registry event or index error'),
        }),
      )
    ).service;
    later.registry = registry;

    const identity = (
      await start(
        startIdentity({
          db,
          dataDir,
          ca: { certPem: tls.caPem, keyPem: tls.caKeyPem ?? '' },
          scope,
          events,
          registrationCode: async () => (await registry.getRegistrationCode()).registrationCode,
          attachments: certificateAttachments(registry, policies),
          policies,
          directory: principalDirectory(registry),
          logger,
          metrics,
          allowAnonymous: config.mqtt.allowAnonymous,
        }),
      )
    ).service;
    later.identity = identity;
    const { certificates, credentials, auth } = identity;
    const admin = await credentials.ensureAdmin({ region: config.region });
    if (auth.anonymousAllowsAll()) {
      logger
        .child({ ctx: 'security' })
        .warn(
          'DEV MODE: anonymous loopback clients may publish and subscribe to EVERYTHING until a policy is attached to the target "anonymous" (THINGSTEAD_ALLOW_ANONYMOUS is on)',
        );
    }

    // Metering before the broker: the broker counts into its meter (none when metering.enabled is false).
    const metering = (
      await start(
        startMetering({
          db,
          events,
          registry,
          logger: logger.child({ ctx: 'metering' }),
          metrics,
          config: config.metering,
          now: options.clock,
        }),
      )
    ).service;
    // Cluster mode (THINGSTEAD_NATS_URL): this node joins the others on NATS and the shared PostgreSQL;
    // it closes after the broker, whose close writes the sessions this node holds.
    let cluster: ClusterNode | null = null;
    // Work that runs once per cluster (src/cluster/leader.ts): the contexts skip their single-runner ticks
    // while another node holds the task. Without a cluster it all runs here (runsHere undefined).
    let runsHere: ((task: string) => boolean) | undefined;
    if (config.cluster.natsUrl !== null) {
      if (db.kind !== 'postgres') throw new Error('cluster mode needs PostgreSQL (THINGSTEAD_DATABASE_URL)');
      const node = await startCluster({ config, db, logger: logger.child({ ctx: 'cluster' }), metrics });
      cluster = node;
      modules.push({ name: 'cluster', close: () => node.close() });
      const leadership = await startLeadership({
        databaseUrl: config.databaseUrl!,
        cluster: config.cluster.name,
        tasks: CLUSTER_TASKS,
        heartbeatMs: config.cluster.heartbeatMs,
        logger: logger.child({ ctx: 'cluster' }),
        metrics,
      });
      runsHere = (task) => leadership.holds(task);
      // Closed after every context started below (the stack), so no tick runs here once it lets go.
      modules.push({
        name: 'cluster leadership',
        close: () => leadership.close(),
        routes: [clusterRoute(node, leadership)],
      });
    }
    const broker = (
      await start(
        startBroker({
          config,
          logger: logger.child({ ctx: 'mqtt' }),
          metrics,
          db,
          hooks: options.hooks ?? auth,
          meter: metering.meter ?? undefined,
          cluster: cluster ?? undefined,
        }),
      )
    ).service;
    modules.push({
      name: 'metering usage events',
      close: metering.publishUsageEvents((topic, payload) =>
        broker.publish({ topic, payload, qos: 0, retain: false }),
      ),
    });
    // Contexts as broker services: the topics each module started so far serves (the registry:
    // connectivity from lifecycle events), and the registry's $aws/events out.
    for (const m of [...modules])
      for (const topic of m.reservedTopics ?? [])
        modules.push({
          name: `${m.name} ${topic.filter}`,
          close: broker.subscribeInternal(topic.filter, (msg) => topic.handler(msg)),
        });
    modules.push({
      name: 'registry events',
      close: registry.onPublish((topic, payload) =>
        broker.publish({ topic, payload, qos: 0, retain: false }),
      ),
    });
    // Signed firmware URLs point at the device HTTPS port when it is on, else the HTTP API; both are known
    // only once listening (below), and URLs are made per delivery, so the base is read then.
    let downloadBase = `http://${urlHost(config.http.host)}:${config.http.port}`;
    const ota = (
      await start(
        startOta({
          db,
          dataDir,
          broker,
          credentials,
          logger: logger.child({ ctx: 'ota' }),
          region: config.region,
          accountId: config.accountId,
          config: config.ota,
          maxPayloadBytes: config.limits.maxPayloadBytes,
          downloadBase: () => downloadBase,
        }),
      )
    ).service;
    const jobs = (
      await start(
        startJobs({
          db,
          events,
          broker,
          registry,
          logger: logger.child({ ctx: 'jobs' }),
          region: config.region,
          accountId: config.accountId,
          config: config.jobs,
          deliverDocument: (document, presign) => ota.resolveDocument(document, presign?.expiresInSec),
          tags,
          onExecutionsCreated: (things) =>
            things.forEach((thing) => metering.add(thing, 'job_executions', 1)),
          runsHere,
        }),
      )
    ).service;
    later.jobs = jobs;
    // Report links of registration tasks point at the HTTP API, known once it listens (below).
    let apiBase = `http://${urlHost(config.http.host)}:${config.http.port}`;
    const provisioning = (
      await start(
        startProvisioning({
          db,
          events,
          broker,
          registry,
          certificates,
          policies,
          ca: { certPem: tls.caPem, keyPem: tls.caKeyPem ?? '' },
          logger: logger.child({ ctx: 'provisioning' }),
          metrics,
          config: config.provisioning,
          json: { maxDepth: config.limits.maxJsonDepth, maxBytes: config.limits.maxPayloadBytes },
          region: config.region,
          accountId: config.accountId,
          dataDir,
          publicBase: () => apiBase,
          tags,
          runsHere,
        }),
      )
    ).service;
    later.provisioning = provisioning;

    const t = config.timeseries;
    const timeseries = (
      await start(
        startTimeseries({
          db,
          logger: logger.child({ ctx: 'timeseries' }),
          metrics,
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
          resolveGroup: groupMembers(registry),
          runsHere,
        }),
      )
    ).service;
    const r = config.rules;
    const rules = (
      await start(
        startRules({
          db,
          events,
          broker,
          logger: logger.child({ ctx: 'rules' }),
          metrics,
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
          sources: r.sources,
          sourcesLogger: logger.child({ ctx: 'sources' }),
          tags,
          requireHttpDestinations: r.requireHttpDestinations,
          onRuleMatched: (publisher, _topic, bytes, actions) =>
            metering.ruleMatched(publisher?.principal.thingName ?? publisher?.clientId ?? '', bytes, actions),
        }),
      )
    ).service;
    later.rules = rules;
    const exports = (
      await start(
        startExports({
          metering,
          timeseries,
          config: config.metering.export,
          dataDir,
          logger: logger.child({ ctx: 'metering' }),
          now: options.clock,
          runsHere,
        }),
      )
    ).service;

    const shadows = (
      await start(
        startShadows({
          db,
          config,
          broker,
          events,
          logger: logger.child({ ctx: 'shadow' }),
          metrics,
          indexing: {
            enabled: () => isShadowIndexed(registry.indexingConfiguration()),
            indexNamed: (name) => isShadowIndexed(registry.indexingConfiguration(), name),
          },
          history: (r) => {
            timeseries
              .write([
                {
                  thing: r.thing,
                  metric: r.name === '' ? '$shadow' : `$shadow/${r.name}`,
                  ts: r.at,
                  value: JSON.stringify({
                    version: r.version,
                    state: r.state,
                    ...(r.deleted ? { deleted: true } : {}),
                  }),
                },
              ])
              .catch((err: unknown) => logger.warn({ err }, 'shadow history write failed'));
          },
          runsHere,
        }),
      )
    ).service;
    fieldProviders.push(shadows.fleetIndex);

    // The web console (src/console): its routes mount on the HTTP API below, and its sessions stand in for
    // SigV4 on the console's calls to the AWS APIs (same key, same role: `aws.session`).
    const webConsole = config.console.enabled
      ? await start(
          startConsole({
            db,
            keys: credentials,
            broker,
            index: registry.index,
            fieldProviders,
            timeseries,
            metrics,
            logger: logger.child({ ctx: 'console' }),
            region: config.region,
            accountId: config.accountId,
            config: config.console,
          }),
        )
      : null;

    const api = await start(
      startHttpApi({
        host: config.http.host,
        port: config.http.port,
        health: () => [...broker.health(), ...(cluster?.health() ?? [])],
        aws: {
          operations: metering.meterOperations(modules.flatMap((m) => m.operations ?? [])),
          credentials,
          logger: logger.child({ ctx: 'api' }),
          metrics,
          region: config.region,
          maxBodyBytes: config.limits.maxApiBodyBytes,
          maxJsonDepth: config.limits.maxJsonDepth,
          ...(webConsole ? { session: (req) => webConsole.service.session(req) } : {}),
        },
        routes: modules.flatMap((m) => m.routes ?? []),
      }),
    );
    const { http } = api.service;

    // Device HTTPS serves its own port and the ALPN port's `x-amzn-http-ca` sockets (the listeners hand
    // them on), so it starts first when either is on.
    let deviceHttps: DeviceHttps | null = null;
    if (config.deviceHttps.port !== null || config.mqtt.alpnPort !== null) {
      const started = await startDeviceHttps({
        host: config.deviceHttps.host,
        port: config.deviceHttps.port,
        tls,
        hooks: auth,
        broker,
        logger,
        metrics,
        events,
        limits: config.limits,
        meter: metering.meter,
        routes: [
          shadowDeviceRoute(shadows.service, `arn:aws:iot:${config.region}:${config.accountId}`),
          (req, res, ctx) => ota.deviceRoute(req, res, ctx),
        ],
      });
      deviceHttps = started;
      modules.push({ name: 'device https', close: () => started.close() });
    }
    const listeners = await startListeners({
      config,
      tls,
      broker,
      http: http.server,
      logger,
      metrics,
      deviceHttps: deviceHttps ? (socket) => deviceHttps.serveTlsSocket(socket) : undefined,
    });
    modules.push({
      name: 'listeners',
      // Shutdown order: no new connections, then no client traffic at all, before any context that consumes
      // routed messages closes (rules, time series, shadows): a QoS 1 PUBLISH acknowledged after the rules
      // engine unsubscribed would be lost uncounted (the gateway outage test lost its replay's start so).
      close: async () => {
        await listeners.close();
        broker.stopClients();
      },
    });
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
    modules.push({ name: 'enforcement', close: () => enforcement.close() });

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
    modules.push({ name: 'timeseries tail', close: detachTail });

    const deviceHttpsPort = deviceHttps?.port ?? null;
    const httpBase = `http://${urlHost(config.http.host)}:${api.service.port}`;
    const endpoints: PlatformEndpoints = {
      http: httpBase,
      httpPort: api.service.port,
      mqtt: listeners.mqtt ? `mqtt://${urlHost(listeners.mqtt.host)}:${listeners.mqtt.port}` : null,
      mqttPort: listeners.mqtt?.port ?? null,
      mqtts: listeners.mqtts ? `mqtts://${urlHost(listeners.mqtts.host)}:${listeners.mqtts.port}` : null,
      mqttsPort: listeners.mqtts?.port ?? null,
      ws: `${httpBase.replace(/^http/, 'ws')}${listeners.wsPath}`,
      wss: listeners.wss
        ? `wss://${urlHost(listeners.wss.host)}:${listeners.wss.port}${listeners.wsPath}`
        : null,
      wssPort: listeners.wss?.port ?? null,
      alpnPort: listeners.alpn?.port ?? null,
      caFile: tls.caFile,
      dataDir,
      deviceHttps:
        deviceHttpsPort !== null ? `https://${urlHost(config.deviceHttps.host)}:${deviceHttpsPort}` : null,
      deviceHttpsPort,
      credentialsFile: admin.accessKeyId ? admin.file : undefined,
    };
    downloadBase = endpoints.deviceHttps ?? endpoints.http;
    apiBase = endpoints.http;
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
      jobs,
      ota,
      provisioning,
      timeseries,
      shadows,
      metering,
      exports,
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
