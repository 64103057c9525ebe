/**
 * Configuration: the one typed schema (`configSchema`), loaded once by `loadConfig` with defaults < file <
 * environment < flags, every problem reported together (`ConfigError`), frozen and passed down explicitly.
 * The only place that knows the THINGSTEAD_* environment names (the binary passes `process.env` in).
 * Imports: no other context (a leaf).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ZodError } from 'zod';
import { configSchema, type Config, type ConfigInput } from './schema.js';

export { configSchema, type Config, type ConfigInput } from './schema.js';

/** Every configuration error found, reported together. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** THINGSTEAD_* variable -> dotted config path. The only place that knows environment names. */
export const ENVIRONMENT: Readonly<Record<string, string>> = {
  THINGSTEAD_DATA_DIR: 'dataDir',
  THINGSTEAD_METERING_ENABLED: 'metering.enabled',
  THINGSTEAD_METERING_FLUSH_MS: 'metering.flushMs',
  THINGSTEAD_METERING_EXPORT_DIR: 'metering.export.dir',
  THINGSTEAD_METERING_EXPORT_INTERVAL_MS: 'metering.export.intervalMs',
  THINGSTEAD_DATABASE_URL: 'databaseUrl',
  THINGSTEAD_LOG_LEVEL: 'logLevel',
  THINGSTEAD_REGION: 'region',
  THINGSTEAD_ACCOUNT_ID: 'accountId',
  THINGSTEAD_HOSTNAME: 'hostname',
  THINGSTEAD_HTTP_HOST: 'http.host',
  THINGSTEAD_HTTP_PORT: 'http.port',
  THINGSTEAD_MQTT_PORT: 'mqtt.port',
  THINGSTEAD_MQTT_HOST: 'mqtt.host',
  THINGSTEAD_MQTT_TLS_PORT: 'mqtt.tlsPort',
  THINGSTEAD_MQTT_TLS_HOST: 'mqtt.tlsHost',
  THINGSTEAD_MQTT_WSS_PORT: 'mqtt.wssPort',
  THINGSTEAD_MQTT_WSS_HOST: 'mqtt.wssHost',
  THINGSTEAD_MQTT_ALPN_PORT: 'mqtt.alpnPort',
  THINGSTEAD_MQTT_ALPN_HOST: 'mqtt.alpnHost',
  THINGSTEAD_ALLOW_ANONYMOUS: 'mqtt.allowAnonymous',
  THINGSTEAD_DEVICE_HTTPS_PORT: 'deviceHttps.port',
  THINGSTEAD_DEVICE_HTTPS_HOST: 'deviceHttps.host',
  THINGSTEAD_TLS_CERT_FILE: 'tls.certFile',
  THINGSTEAD_TLS_KEY_FILE: 'tls.keyFile',
  THINGSTEAD_TLS_CA_FILE: 'tls.caFile',
  THINGSTEAD_MAX_PAYLOAD_BYTES: 'limits.maxPayloadBytes',
  THINGSTEAD_MAX_PACKET_BYTES: 'limits.maxPacketBytes',
  THINGSTEAD_MAX_INFLIGHT: 'limits.maxInflight',
  THINGSTEAD_MAX_QUEUED_PER_SESSION: 'limits.maxQueuedPerSession',
  THINGSTEAD_MAX_OUTBOUND_BYTES: 'limits.maxOutboundBytes',
  THINGSTEAD_CONNECT_TIMEOUT_MS: 'limits.connectTimeoutMs',
  THINGSTEAD_KEEPALIVE_MIN: 'limits.keepAliveMin',
  THINGSTEAD_KEEPALIVE_MAX: 'limits.keepAliveMax',
  THINGSTEAD_SESSION_EXPIRY_MAX: 'limits.sessionExpiryMax',
  THINGSTEAD_MAX_CONNECTIONS: 'limits.maxConnections',
  THINGSTEAD_CONNECTS_PER_CLIENT_ID_PER_SECOND: 'limits.connectsPerClientIdPerSecond',
  THINGSTEAD_CONNECTS_PER_CLIENT_ID_BURST: 'limits.connectBurstPerClientId',
  THINGSTEAD_MAX_JSON_DEPTH: 'limits.maxJsonDepth',
  THINGSTEAD_MAX_API_BODY_BYTES: 'limits.maxApiBodyBytes',
  THINGSTEAD_MAX_RETAINED: 'limits.maxRetained',
  THINGSTEAD_MAX_RETAINED_BYTES: 'limits.maxRetainedBytes',
  THINGSTEAD_MAX_RETAINED_PER_CLIENT: 'limits.maxRetainedPerClient',
  THINGSTEAD_MAX_CLIENT_ID_BYTES: 'limits.maxClientIdBytes',
  THINGSTEAD_RULES_QUEUE_SIZE: 'rules.queueSize',
  THINGSTEAD_RULES_NATS_SERVERS: 'rules.natsServers',
  THINGSTEAD_RULES_POSTGRES_URL: 'rules.postgresUrl',
  THINGSTEAD_RULES_REQUIRE_HTTP_DESTINATIONS: 'rules.requireHttpDestinations',
  THINGSTEAD_SHADOW_MAX_STATE_BYTES: 'shadow.maxStateBytes',
  THINGSTEAD_SHADOW_MAX_UPDATES_PER_SECOND: 'shadow.maxUpdatesPerSecondPerThing',
  THINGSTEAD_SHADOW_MAX_IN_FLIGHT: 'shadow.maxInFlightPerConnection',
  THINGSTEAD_SHADOW_HISTORY: 'shadow.history',
  THINGSTEAD_OTA_MAX_FILE_BYTES: 'ota.maxFileBytes',
  THINGSTEAD_OTA_PUBLIC_URL: 'ota.publicUrl',
  THINGSTEAD_PROVISIONING_TOKEN_TTL_MS: 'provisioning.tokenTtlMs',
  THINGSTEAD_PROVISIONING_ALLOW_PLAIN_HTTP_HOOKS: 'provisioning.allowPlainHttpHooks',
  THINGSTEAD_PROVISIONING_BULK_INPUT_DIR: 'provisioning.bulkInputDir',
  THINGSTEAD_TIMESERIES_RAW_RETENTION_MS: 'timeseries.rawRetentionMs',
  THINGSTEAD_TIMESERIES_ROLLUP_STEP_MS: 'timeseries.rollupStepMs',
  THINGSTEAD_NATS_URL: 'cluster.natsUrl',
  THINGSTEAD_CLUSTER_NAME: 'cluster.name',
  THINGSTEAD_NODE_NAME: 'cluster.nodeName',
  THINGSTEAD_WORKERS: 'cluster.workers',
  THINGSTEAD_CONSOLE_ENABLED: 'console.enabled',
  THINGSTEAD_CONSOLE_SESSION_TTL_MS: 'console.sessionTtlMs',
};

type Tree = Record<string, unknown>;

function setPath(target: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = (typeof next === 'object' && next !== null ? next : (node[key] = {})) as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof prev === 'object' && prev !== null
        ? deepMerge(prev as Tree, v as Tree)
        : v;
  }
  return out;
}

export interface LoadConfigOptions {
  /** Path of a JSON config file; its keys follow the schema (e.g. {"mqtt": {"port": 1883}}). */
  file?: string | undefined;
  /** Environment to read THINGSTEAD_* from; pass process.env from the binary, {} in tests. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values from command-line flags or from code (tests), highest precedence. */
  overrides?: ConfigInput;
}

/**
 * Resolve configuration: defaults < file < environment < overrides.
 * Throws ConfigError listing every problem. The result is deeply frozen.
 * @example const config = loadConfig({ env: process.env, overrides: { http: { port: 0 } } });
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const problems: string[] = [];
  let merged: Tree = {};
  const file = options.file ?? options.env?.THINGSTEAD_CONFIG;
  if (file) {
    try {
      merged = JSON.parse(readFileSync(file, 'utf8')) as Tree;
    } catch (err) {
      problems.push(`config file ${file}: ${(err as Error).message}`);
    }
  }
  const fromEnv: Tree = {};
  for (const [name, value] of Object.entries(options.env ?? {})) {
    // THINGSTEAD_TEST_* is reserved for the test suite (e.g. THINGSTEAD_TEST_DATABASE_URL), never configuration.
    if (!name.startsWith('THINGSTEAD_') || name.startsWith('THINGSTEAD_TEST_')) continue;
    if (name === 'THINGSTEAD_CONFIG' || value === undefined) continue;
    const path = ENVIRONMENT[name];
    if (!path) {
      problems.push(`${name}: unknown setting (known: ${Object.keys(ENVIRONMENT).join(', ')})`);
      continue;
    }
    setPath(fromEnv, path, value);
  }
  merged = deepMerge(deepMerge(merged, fromEnv), options.overrides ?? {});
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) problems.push(...formatZod(parsed.error));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const config = parsed.data;
  config.hostname ??= hostname();
  return deepFreeze(config);
}

function formatZod(error: ZodError): string[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.join('.');
    // An unknown key anywhere in the file (`mqtt.prot`) is named by its own path, one line each.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const full = path ? `${path}.${key}` : key;
        const known = knownKeys(issue.path);
        return `${full}: unknown setting${known.length ? ` (known here: ${known.join(', ')})` : ''}`;
      });
    }
    const env = Object.entries(ENVIRONMENT).find(([, p]) => p === path)?.[0];
    return [`${path || '(root)'}${env ? ` (${env})` : ''}: ${issue.message}`];
  });
}

/** The keys the schema knows at an object path (for "unknown setting" messages). */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let node: unknown = configSchema;
  for (const key of path) {
    node = unwrap(node);
    if (typeof key === 'number') node = (node as { element?: unknown }).element;
    else node = (node as { shape?: Record<string, unknown> }).shape?.[String(key)];
  }
  const shape = (unwrap(node) as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(node: unknown): unknown {
  // defaults, prefaults and nullables wrap the object schema; `unwrap()` peels one layer.
  let n = node as { unwrap?: () => unknown } | undefined;
  for (let i = 0; i < 5 && n && typeof n.unwrap === 'function' && !('shape' in n); i++) {
    n = n.unwrap() as typeof n;
  }
  return n;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
