import { z } from 'zod';

/** Port number; 0 means "pick a free port" (the chosen port is printed and written to endpoints.json). */
const port = z.coerce.number().int().min(0).max(65535);
/**
 * A listener's port, or `off` (also null) to disable it: `THINGSTEAD_MQTT_TLS_PORT=off`,
 * `--mqtt-tls-port off`, `{"mqtt": {"tlsPort": "off"}}` or `null` in the config file.
 */
const switchablePort = z.preprocess(
  (v) => (typeof v === 'string' && v.trim().toLowerCase() === 'off' ? null : v),
  port.nullable(),
);
/** Optional port: absent, null or `off` means the listener is off. */
const optionalPort = switchablePort.default(null);
/** A rate or count limit, or null (also `off`/`none`) for no limit. */
const nullableRate = z.preprocess(
  (v) => (typeof v === 'string' && ['off', 'none', 'null'].includes(v.trim().toLowerCase()) ? null : v),
  z.coerce.number().min(0).nullable(),
);
const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  return v;
}, z.boolean());

/**
 * The one typed configuration schema. Defaults < config file < environment (THINGSTEAD_*) < flags.
 * Validated once at start (every error reported together), frozen, and passed down explicitly.
 */
export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    /** postgres://... switches the stores from embedded SQLite to PostgreSQL (scale-out). */
    databaseUrl: z.string().nullable().default(null),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    region: z.string().default('us-east-1'),
    accountId: z
      .string()
      .regex(/^\d{12}$/, 'must be 12 digits')
      .default('000000000000'),
    /** Host name put into the server certificate and DescribeEndpoint; defaults to the machine's name. */
    hostname: z.string().nullable().default(null),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: port.default(8080),
      })
      .strict()
      .prefault({}),
    mqtt: z
      .object({
        /** Plain MQTT over TCP. Off unless a port is set. */
        port: optionalPort,
        host: z.string().default('127.0.0.1'),
        /** MQTT over mutual TLS. */
        tlsPort: switchablePort.default(8883),
        tlsHost: z.string().default('0.0.0.0'),
        /**
         * MQTT over WebSocket with TLS (`wss://host:port/mqtt`, server certificate only; SigV4 presigned URLs
         * as AWS, reference §7.3), which the AWS IoT Device SDK v2 uses. Off unless a port is set.
         */
        wssPort: optionalPort,
        wssHost: z.string().default('0.0.0.0'),
        /**
         * One TLS port for everything, as AWS's 443 (reference §8.0): ALPN `x-amzn-mqtt-ca` is MQTT over
         * mutual TLS, `x-amzn-http-ca` the device HTTPS plane, `http/1.1` or no ALPN MQTT over WebSocket at
         * /mqtt. Off unless a port is set (443 needs privileges; AWS's 8443 is the device HTTPS port).
         */
        alpnPort: optionalPort,
        alpnHost: z.string().default('0.0.0.0'),
        /** Dev only: loopback clients may connect without credentials. */
        allowAnonymous: bool.default(false),
      })
      .strict()
      .prefault({}),
    /** HTTPS for devices (POST /topics/{topic} with a client certificate, reference §8.0). Off unless a port is set. */
    deviceHttps: z
      .object({
        port: optionalPort,
        host: z.string().default('0.0.0.0'),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        /** Operator-supplied server certificate and key (PEM files); generated from the platform CA when absent. */
        certFile: z.string().nullable().default(null),
        keyFile: z.string().nullable().default(null),
        caFile: z.string().nullable().default(null),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Maximum PUBLISH payload in bytes (AWS: 128 KB). */
        maxPayloadBytes: z.coerce.number().int().min(1).max(268_435_455).default(131_072),
        /** Maximum MQTT packet size in bytes, inbound and the default outbound cap. */
        maxPacketBytes: z.coerce.number().int().min(64).max(268_435_455).default(140_000),
        /** Unacknowledged QoS 1/2 messages per direction (receive maximum). AWS: 100. */
        maxInflight: z.coerce.number().int().min(1).max(65_535).default(100),
        /** Messages queued per offline or slow session; beyond it the oldest QoS 0/1 are dropped and counted. */
        maxQueuedPerSession: z.coerce.number().int().min(1).default(1000),
        /** Bytes buffered in a connection's socket before it is disconnected as a slow consumer. */
        maxOutboundBytes: z.coerce
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 * 1024),
        /** Milliseconds a new connection has to send CONNECT. */
        connectTimeoutMs: z.coerce.number().int().min(100).default(10_000),
        keepAliveMin: z.coerce.number().int().min(0).default(0),
        keepAliveMax: z.coerce.number().int().min(1).max(65_535).default(1200),
        /** Session expiry cap in seconds for persistent sessions (AWS default 1 h; configurable). */
        sessionExpiryMax: z.coerce.number().int().min(0).default(3600),
        maxTopicLevels: z.coerce.number().int().min(1).default(8),
        maxTopicBytes: z.coerce.number().int().min(1).max(65_535).default(256),
        maxFiltersPerSubscribe: z.coerce.number().int().min(1).default(8),
        /**
         * Longest client id in bytes (AWS: 128); beyond it CONNACK 0x85 Client Identifier not valid (3.1.1:
         * return code 2). At least 23, the length MQTT guarantees to every client [MQTT-3.1.3-5].
         */
        maxClientIdBytes: z.coerce.number().int().min(23).max(65_535).default(128),
        maxConnections: z.coerce.number().int().min(1).default(100_000),
        /**
         * CONNECTs one client id may make per second (AWS IoT Core: 1), as a token bucket holding up to
         * `connectBurstPerClientId`; beyond it CONNACK 0x9F Connection rate exceeded (3.1.1: 3). 0: no limit.
         */
        connectsPerClientIdPerSecond: z.coerce.number().min(0).default(1),
        connectBurstPerClientId: z.coerce.number().int().min(1).default(5),
        /**
         * Retained messages in total (AWS IoT Core: 500,000 retained messages per account, adjustable).
         * Beyond it a retained PUBLISH to a new topic gets 0x97 Quota exceeded (3.1.1: disconnect).
         */
        maxRetained: z.coerce.number().int().min(1).default(500_000),
        /**
         * Bytes of retained messages in total (payload + topic). AWS documents no byte cap; 256 MiB is
         * ~500 B per entry at the count cap and keeps the broker's RSS bounded even with 128 KB payloads.
         */
        maxRetainedBytes: z.coerce
          .number()
          .int()
          .min(1024)
          .default(256 * 1024 * 1024),
        /**
         * Retained topics one client id may own (the client that last set a topic owns it). AWS documents no
         * per-client cap; 1000 is generous for a device's state topics and keeps one device from taking more
         * than 0.2% of the total.
         */
        maxRetainedPerClient: z.coerce.number().int().min(1).default(1000),
        /**
         * Deepest JSON nesting accepted from outside: rule payloads, API bodies, rule test payloads,
         * attributes. Deeper payloads are a rule error (errorAction), deeper bodies InvalidRequestException.
         * 64: AWS allows 6 levels inside a shadow's state and device telemetry rarely passes 10-20, while
         * every recursive walk (SQL evaluation, re-serialisation) stays far below V8's stack (~10k frames).
         */
        maxJsonDepth: z.coerce.number().int().min(1).max(1000).default(64),
        /**
         * Largest AWS-API request body in bytes; beyond it 413 RequestEntityTooLargeException, without
         * buffering the rest. 4 MiB: AWS's own IoT bodies are far smaller (job documents 32 KB, shadows
         * 8 KB, policies 2 KB); the largest legitimate one here is a time-series batch write.
         */
        maxApiBodyBytes: z.coerce
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    /** Rules engine (src/rules): evaluation queue, outbox retries, default sink connections, stream sources. */
    rules: z
      .object({
        /** Messages waiting for evaluation; beyond it they are dropped and counted (reason queue_full). */
        queueSize: z.coerce.number().int().min(1).default(10_000),
        /** Deliveries in flight per action before new ones spill into the store-backed outbox. */
        maxInFlightPerAction: z.coerce.number().int().min(1).default(64),
        /** Default NATS servers (comma-separated) for `nats` actions and sources. */
        natsServers: z.string().nullable().default(null),
        /** Default PostgreSQL URL for `postgres` actions. */
        postgresUrl: z.string().nullable().default(null),
        /** Write each durable delivery to the outbox before its first attempt (crash-safe, slower). */
        writeAhead: bool.default(false),
        /**
         * http actions send only to URLs an ENABLED topic rule destination covers. Off (default): a URL no
         * destination covers is sent to; one a destination covers only while it is ENABLED.
         */
        requireHttpDestinations: bool.default(false),
        outbox: z
          .object({
            maxRows: z.coerce.number().int().min(1).default(1_000_000),
            maxAttempts: z.coerce.number().int().min(1).default(50),
            maxAgeMs: z.coerce.number().int().min(1000).default(86_400_000),
            baseBackoffMs: z.coerce.number().int().min(1).default(200),
            maxBackoffMs: z.coerce.number().int().min(1).default(30_000),
            pollMs: z.coerce.number().int().min(5).default(100),
          })
          .strict()
          .prefault({}),
        /**
         * Kafka topics or JetStream subjects whose records enter as MQTT messages (then rules, store, subscribers).
         * `mqttTopic` may use {key} (Kafka record key) or {subject} (NATS subject, dots as slashes).
         */
        sources: z
          .array(
            z.discriminatedUnion('kind', [
              z
                .object({
                  kind: z.literal('kafka'),
                  brokers: z.string().min(1),
                  topic: z.string().min(1),
                  groupId: z.string().default('thingstead'),
                  mqttTopic: z.string().min(1),
                  /** 'keyvalue' turns text records such as `temperature=25` into JSON `{"temperature":25}`. */
                  payloadFormat: z.enum(['raw', 'keyvalue']).default('raw'),
                  clientProperties: z.record(z.string(), z.string()).default({}),
                })
                .strict(),
              z
                .object({
                  kind: z.literal('nats'),
                  servers: z.string().nullable().default(null),
                  stream: z.string().min(1),
                  subject: z.string().min(1),
                  durable: z.string().default('thingstead'),
                  mqttTopic: z.string().min(1),
                  payloadFormat: z.enum(['raw', 'keyvalue']).default('raw'),
                })
                .strict(),
            ]),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
    /** Device shadows (src/shadow): AWS IoT's limits as defaults (reference §11). */
    shadow: z
      .object({
        /** Bytes of a shadow's state (desired + reported, metadata not counted). AWS: 8 KB; up to 1 MiB. */
        maxStateBytes: z.coerce
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024)
          .default(8192),
        /** Levels of nesting inside desired/reported. AWS: 6. */
        maxDepth: z.coerce.number().int().min(1).max(32).default(6),
        /** Updates per second per thing before 429. AWS: 20. 0 disables the limit. */
        maxUpdatesPerSecondPerThing: z.coerce.number().int().min(0).default(20),
        /** Shadow requests in flight per MQTT connection before 429. AWS: 10. 0 disables the limit. */
        maxInFlightPerConnection: z.coerce.number().int().min(0).default(10),
        /** How long a deleted shadow keeps its version. AWS: 48 h. */
        tombstoneMs: z.coerce
          .number()
          .int()
          .min(0)
          .default(48 * 3_600_000),
        /** Parsed shadow documents kept in memory. */
        cacheEntries: z.coerce.number().int().min(0).default(50_000),
        /** Keep every accepted version in the time-series store (metric `$shadow` or `$shadow/<name>`). */
        history: bool.default(false),
        /** Requests waiting for the shadow service before 429 on /rejected. */
        queueSize: z.coerce.number().int().min(1).default(10_000),
        /** Shadows served at once (one at a time per shadow); higher hides PostgreSQL round trips. */
        concurrency: z.coerce.number().int().min(1).max(1024).default(64),
      })
      .strict()
      .prefault({}),
    /** Jobs (src/jobs): rollouts, timers, the watchdog, document sources. */
    jobs: z
      .object({
        /**
         * Milliseconds in one job "minute": AWS expresses rollout rates and timeouts in minutes; tests and
         * demos shrink it (e.g. 100) to run minutes-long rollouts and timeouts in seconds.
         */
        minuteMs: z.coerce.number().int().min(1).default(60_000),
        /** How often the rollout runner launches executions and fires timers (ms). */
        tickMs: z.coerce.number().int().min(5).default(1000),
        /**
         * Watchdog: an IN_PROGRESS execution with no update for this many job minutes goes TIMED_OUT (with
         * the reason in statusDetails), even when its job set no timeout. 0 turns the watchdog off.
         */
        watchdogMinutes: z.coerce.number().int().min(0).default(1440),
        /** Timeout for fetching a CreateJob documentSource URL (ms). */
        documentFetchTimeoutMs: z.coerce.number().int().min(1).default(10_000),
      })
      .strict()
      .prefault({}),
    /** Firmware updates (src/ota): stored files, signed download URLs, MQTT file delivery. */
    ota: z
      .object({
        /** Largest firmware file accepted by an upload (bytes). AWS's MQTT stream files: 24 MB. */
        maxFileBytes: z.coerce
          .number()
          .int()
          .min(1)
          .default(64 * 1024 * 1024),
        /** Signed download URL lifetime when a job sets no presignedUrlConfig.expiresInSec (s; AWS: 3600). */
        urlExpirySeconds: z.coerce.number().int().min(1).max(604_800).default(3600),
        /**
         * Base URL written into signed download URLs (e.g. https://iot.example.com:8443), for devices that
         * reach the platform by another name than its listeners' addresses. Default: the device HTTPS port
         * when it is on, else the HTTP API.
         */
        publicUrl: z.string().url().nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** Fleet provisioning flows (src/provisioning): ownership tokens, claims, the hook, bulk tasks, traces. */
    provisioning: z
      .object({
        /** Certificate ownership tokens expire this long after issue; their unused certificate goes (AWS: 1 h). */
        tokenTtlMs: z.coerce.number().int().min(1).default(3_600_000),
        /** CreateProvisioningClaim certificates are valid this long (AWS: 5 minutes). */
        claimTtlMs: z.coerce.number().int().min(1000).default(300_000),
        /** How often expired tokens and lapsed registrations (a crashed process's) are cleaned up (ms). */
        sweepIntervalMs: z.coerce.number().int().min(10).default(60_000),
        /** A registration's journal lease: after a crash, its undo runs once this has passed (ms). */
        recoveryLeaseMs: z.coerce.number().int().min(100).default(60_000),
        /** The pre-provisioning hook's time limit (ms; AWS: 5 s). */
        hookTimeoutMs: z.coerce.number().int().min(1).default(5000),
        /** Allow plain http:// hooks to other hosts than loopback (off: https only, or http to 127.0.0.1). */
        allowPlainHttpHooks: bool.default(false),
        /** Key type of certificates made by CreateKeysAndCertificate and claims (AWS: RSA 2048). */
        keyType: z.enum(['rsa-2048', 'ec-p256']).default('rsa-2048'),
        /** MQTT requests waiting for the provisioning service before 429 on /rejected. */
        queueSize: z.coerce.number().int().min(1).default(10_000),
        /** MQTT provisioning requests served at once. */
        concurrency: z.coerce.number().int().min(1).max(1024).default(16),
        /** Traces kept in memory (newest first). */
        traceRing: z.coerce.number().int().min(0).default(1000),
        /** Traces kept in the database (newest); older ones are trimmed. */
        traceStored: z.coerce.number().int().min(0).default(100_000),
        /** Local files StartThingRegistrationTask may read: <bulkInputDir>/<bucket>/<key>. Default <dataDir>/bulk. */
        bulkInputDir: z.string().nullable().default(null),
        /** Lines of one registration task provisioned at once. */
        bulkConcurrency: z.coerce.number().int().min(1).max(256).default(16),
        /** Largest registration input file (bytes). */
        bulkMaxInputBytes: z.coerce
          .number()
          .int()
          .min(1)
          .default(256 * 1024 * 1024),
        /** Timeout for fetching an http(s) registration input file (ms). */
        bulkFetchTimeoutMs: z.coerce.number().int().min(1).default(30_000),
      })
      .strict()
      .prefault({}),
    /** Built-in time-series store (src/timeseries). */
    timeseries: z
      .object({
        /** Raw points older than this are rolled up then deleted; 0 keeps raw points forever. */
        rawRetentionMs: z.coerce
          .number()
          .int()
          .min(0)
          .default(30 * 86_400_000),
        rollupStepMs: z.coerce.number().int().min(1000).default(3_600_000),
        /** Rollups older than this are deleted; 0 keeps them forever. */
        rollupRetentionMs: z.coerce.number().int().min(0).default(0),
        retentionIntervalMs: z.coerce.number().int().min(1000).default(3_600_000),
        maxBatch: z.coerce.number().int().min(1).default(2000),
        flushMs: z.coerce.number().int().min(1).default(20),
        maxPending: z.coerce.number().int().min(1).default(200_000),
      })
      .strict()
      .prefault({}),
    /** Usage metering, quotas and analytics exports (src/metering, docs/metering.md). */
    metering: z
      .object({
        /** Count usage on the broker's hot path; off: the broker pays one branch per packet, no quotas. */
        enabled: bool.default(true),
        /** Milliseconds between ledger flushes to the database (usage is queryable after the next one). */
        flushMs: z.coerce.number().int().min(50).max(60_000).default(10_000),
        /**
         * Limits that apply to every thing without its own (AWS IoT Core's published limits; null: none).
         * Limits of one thing or billing group are set at run time (`thingstead quota set`).
         */
        thingDefaults: z
          .object({
            connectRate: nullableRate.default(null),
            publishRate: nullableRate.default(100),
            publishBytesRate: nullableRate.default(512 * 1024),
            subscriptions: nullableRate.default(50),
            shadowRate: nullableRate.default(null),
            apiRate: nullableRate.default(null),
          })
          .strict()
          .prefault({}),
        /**
         * Seconds of its rate a quota's token bucket holds (the burst a client may send at once while its
         * average stays at the rate; AWS documents rates, not bursts). 10 lets a gateway replay a short
         * outage's backlog.
         */
        burstSeconds: z.coerce.number().min(0.01).max(3600).default(10),
        /** Parquet exports of telemetry and usage. */
        export: z
          .object({
            /** Where the files go (Hive-style partitions below it); default `<dataDir>/exports`. */
            dir: z.string().nullable().default(null),
            /** Export continuously every this many ms (the completed window up to now - lagMs); 0: on demand only. */
            intervalMs: z.coerce.number().int().min(0).default(0),
            /** How far behind now a continuous export stays, so late points and the last flush are in. */
            lagMs: z.coerce.number().int().min(0).default(60_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** The web console at `/` on the HTTP port (src/console). */
    console: z
      .object({
        /** Serve the console (its API calls go through the same authorization as the AWS API). */
        enabled: bool.default(true),
        /** A session ends this long after sign-in (ms; default 12 h). */
        sessionTtlMs: z.coerce
          .number()
          .int()
          .min(60_000)
          .default(12 * 3_600_000),
        /** Live feeds (Server-Sent Events) open at once; beyond it a new one is refused (503, counted). */
        maxLiveClients: z.coerce.number().int().min(1).default(1000),
        /** Bytes buffered for one live feed before it is cut off as a slow consumer (counted). */
        maxLiveBufferBytes: z.coerce
          .number()
          .int()
          .min(4096)
          .default(1024 * 1024),
      })
      .strict()
      .prefault({}),
    /**
     * Cluster mode (src/cluster): nodes sharing one PostgreSQL (`databaseUrl`) route messages to each other
     * over core NATS. Off (one process, the local bus) unless `natsUrl` is set.
     */
    cluster: z
      .object({
        /** nats://host:4222 (comma-separated for several servers). Setting it turns cluster mode on. */
        natsUrl: z.string().nullable().default(null),
        /** Nodes with the same name (and database) form one cluster; subjects are `ts.{name}.…`. */
        name: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only (a NATS subject token)')
          .default('thingstead'),
        /** This node's name in the cluster view; defaults to `{hostname}-{pid}`. */
        nodeName: z.string().nullable().default(null),
        /** `thingstead up --workers N`: broker processes on this machine sharing the listening ports. */
        workers: z.coerce.number().int().min(1).max(256).default(1),
        /** How often a node records that it is alive (ms). */
        heartbeatMs: z.coerce.number().int().min(100).default(1000),
        /** A node not heard of for this long is dead: its clients' sessions are adopted and wills fire. */
        deadAfterMs: z.coerce.number().int().min(500).default(5000),
        /** A QoS 1/2 PUBLISH is acknowledged once NATS has it; past this the PUBACK says it failed. */
        routeAckTimeoutMs: z.coerce.number().int().min(50).default(2000),
        /**
         * Share groups: `local` serves a group on the publishing node when a member is online there (no
         * cross-node hop; consumers scale with the publishers' spread), `balanced` lets NATS pick any node's
         * member for every message.
         */
        sharedSubscriptions: z.enum(['local', 'balanced']).default('local'),
        /** Session hand-over between nodes: how long to wait for the old owner to release it. */
        takeoverTimeoutMs: z.coerce.number().int().min(50).default(2000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.cluster.natsUrl !== null && c.databaseUrl === null)
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'natsUrl'],
        message:
          'cluster mode shares its state in PostgreSQL: set THINGSTEAD_DATABASE_URL (postgres://...) as well',
      });
    if (c.cluster.workers > 1 && c.cluster.natsUrl === null)
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'workers'],
        message:
          'several workers route messages to each other over NATS: set THINGSTEAD_NATS_URL (nats://...) and THINGSTEAD_DATABASE_URL (postgres://...)',
      });
  });

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
