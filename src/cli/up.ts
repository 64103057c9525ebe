import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type ConfigInput } from '../config/index.js';
// The platform (every context) is loaded only when `up` runs: other commands and `--help` stay fast.
import type { Platform } from '../platform/index.js';
import { acquireDataDirLock, type LockHolder } from './lock.js';
import { isWorkerProcess, reportToPrimary, runWorkers } from './workers.js';

interface UpFlags {
  config?: string;
  dataDir?: string;
  databaseUrl?: string;
  httpPort?: string;
  httpHost?: string;
  mqttPort?: string;
  mqttHost?: string;
  mqttTlsPort?: string;
  allowAnonymous?: boolean;
  logLevel?: string;
  workers?: string;
}

function overridesFrom(flags: UpFlags): ConfigInput {
  const o: Record<string, any> = { http: {}, mqtt: {} };
  if (flags.dataDir) o.dataDir = flags.dataDir;
  if (flags.databaseUrl) o.databaseUrl = flags.databaseUrl;
  if (flags.logLevel) o.logLevel = flags.logLevel;
  if (flags.httpPort) o.http.port = flags.httpPort;
  if (flags.httpHost) o.http.host = flags.httpHost;
  if (flags.mqttPort) o.mqtt.port = flags.mqttPort;
  if (flags.mqttHost) o.mqtt.host = flags.mqttHost;
  // `off` (any case) is understood by the schema for every listener port.
  if (flags.mqttTlsPort) o.mqtt.tlsPort = flags.mqttTlsPort;
  if (flags.allowAnonymous) o.mqtt.allowAnonymous = true;
  if (flags.workers) o.cluster = { workers: flags.workers };
  return o as ConfigInput;
}

/** The lines a newcomer reads first: where every endpoint, the CA and the credentials are. */
export function banner(platform: Platform): string {
  const e = platform.endpoints;
  const lines = [
    'Thingstead is up.',
    // Only what exists: the AWS-compatible API and (unless console.enabled is false) the web console.
    `  API (AWS IoT)     ${e.http}`,
    ...(platform.config.console.enabled
      ? [
          `  Web console       ${e.http}/   (sign in with an access key: the admin key is in the credentials file)`,
        ]
      : []),
    // The TLS port requires a client certificate, also in anonymous dev mode (src/identity/auth-hooks.ts).
    `  MQTT over TLS     ${e.mqtts ?? 'off'}${e.mqtts ? '   (mutual TLS: client certificate required)' : ''}`,
    `  MQTT over WS      ${e.ws}`,
    `  MQTT over WSS     ${e.wss ?? 'off (set THINGSTEAD_MQTT_WSS_PORT to enable; the AWS IoT Device SDK v2 uses it)'}`,
    `  ALPN (AWS 443)    ${e.alpnPort ? `port ${e.alpnPort}   (x-amzn-mqtt-ca MQTT, x-amzn-http-ca HTTPS, http/1.1 WSS)` : 'off (set THINGSTEAD_MQTT_ALPN_PORT to enable)'}`,
    `  MQTT (plain)      ${e.mqtt ?? 'off (set THINGSTEAD_MQTT_PORT to enable)'}`,
    `  HTTPS (devices)   ${e.deviceHttps ?? 'off (set THINGSTEAD_DEVICE_HTTPS_PORT to enable)'}`,
    `  CA certificate    ${e.caFile}`,
    `  Data directory    ${e.dataDir}   (endpoints.json lists the bound ports)`,
    `  Metrics / health  ${e.http}/metrics  ${e.http}/healthz`,
  ];
  if (e.credentialsFile) {
    lines.push(
      `  Admin credentials ${e.credentialsFile}   (AWS shared-credentials file, [default] profile; more keys: thingstead keys --help)`,
      '',
      'Use the AWS CLI or any AWS SDK against it:',
      `  AWS_SHARED_CREDENTIALS_FILE=${e.credentialsFile} aws iot list-things --endpoint-url ${e.http}`,
      `  npx thingstead things list        (reads ${e.dataDir}/endpoints.json and credentials)`,
      '',
      'First device (thing, certificate, least-privilege policy, files and a mosquitto_pub line):',
      '  npx thingstead onboard my-device --out ./my-device',
    );
  }
  if (platform.config.mqtt.allowAnonymous) {
    lines.push(
      '',
      '  WARNING: THINGSTEAD_ALLOW_ANONYMOUS is on: loopback clients connect without credentials (dev only)',
      '           on plain MQTT and WebSocket; the TLS port still requires a client certificate.',
      platform.security.auth.anonymousAllowsAll()
        ? '  WARNING: no policy is attached to "anonymous", so anonymous clients may publish and subscribe to EVERYTHING.'
        : '  Anonymous clients are limited by the policies attached to "anonymous".',
    );
  }
  if (e.mqtt && platform.config.mqtt.allowAnonymous) {
    lines.push(
      '',
      'Try it:',
      `  mosquitto_sub -h 127.0.0.1 -p ${e.mqttPort} -t 'demo/#' -v &`,
      `  mosquitto_pub -h 127.0.0.1 -p ${e.mqttPort} -t demo/hello -m 'hi'`,
    );
  }
  return lines.join('\n');
}

/** What to say when another `thingstead up` holds the data directory: who, where, and what to do. */
function alreadyRunning(dataDir: string, holder: LockHolder, lockFile: string): string {
  let endpoints: { http?: string; mqtts?: string | null; mqtt?: string | null } = {};
  const file = join(dataDir, 'endpoints.json');
  try {
    if (existsSync(file)) endpoints = JSON.parse(readFileSync(file, 'utf8')) as typeof endpoints;
  } catch {
    // endpoints.json being rewritten: say what we know
  }
  const where = [
    endpoints.http && `API ${endpoints.http}`,
    endpoints.mqtts && `MQTT over TLS ${endpoints.mqtts}`,
    endpoints.mqtt && `MQTT ${endpoints.mqtt}`,
  ].filter(Boolean);
  return [
    `thingstead: another thingstead (pid ${holder.pid}${holder.startedAt ? `, started ${holder.startedAt}` : ''}) is already running on the data directory ${dataDir}.`,
    where.length ? `  It serves: ${where.join(', ')}` : '',
    `  Use that one, or stop it first (kill ${holder.pid}), or start this one with its own --data-dir (THINGSTEAD_DATA_DIR).`,
    `  (lock file: ${lockFile}; it is taken over automatically once that process has exited)`,
  ]
    .filter(Boolean)
    .join('\n');
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Run the platform: broker and API (embedded SQLite under ./data unless told otherwise).')
    .option('-c, --config <file>', 'JSON config file (keys as in the schema; env THINGSTEAD_CONFIG)')
    .option('--data-dir <dir>', 'state directory (env THINGSTEAD_DATA_DIR, default ./data)')
    .option('--database-url <url>', 'postgres://... for scale-out (env THINGSTEAD_DATABASE_URL)')
    .option(
      '--http-port <port>',
      'API and MQTT over WebSocket (env THINGSTEAD_HTTP_PORT, default 8080; 0 = any free port)',
    )
    .option('--http-host <host>', 'HTTP bind address (env THINGSTEAD_HTTP_HOST, default 127.0.0.1)')
    .option(
      '--mqtt-port <port>',
      "plain MQTT port, off unless set (env THINGSTEAD_MQTT_PORT; 'off' disables)",
    )
    .option('--mqtt-host <host>', 'plain MQTT bind address (env THINGSTEAD_MQTT_HOST, default 127.0.0.1)')
    .option(
      '--mqtt-tls-port <port>',
      "MQTT over mutual TLS (env THINGSTEAD_MQTT_TLS_PORT, default 8883; 'off' disables)",
    )
    .option(
      '--allow-anonymous',
      'dev only: loopback clients connect without credentials (env THINGSTEAD_ALLOW_ANONYMOUS)',
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env THINGSTEAD_LOG_LEVEL)')
    .option(
      '--workers <n>',
      'broker processes on this machine sharing the ports; needs THINGSTEAD_DATABASE_URL and THINGSTEAD_NATS_URL (env THINGSTEAD_WORKERS, default 1)',
    )
    .action(async (flags: UpFlags) => {
      let config;
      try {
        config = loadConfig({ file: flags.config, env: process.env, overrides: overridesFrom(flags) });
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(
            `thingstead: ${err.message}\nFix the settings above (flags, THINGSTEAD_* environment or the config file) and start again.`,
          );
          process.exit(2);
        }
        throw err;
      }
      const worker = isWorkerProcess();
      // One `up` per data directory: a second one would share the database and overwrite endpoints.json.
      // Workers run under the primary's lock.
      const lock = worker
        ? { ok: true as const, tookOverFrom: null, release: () => undefined }
        : acquireDataDirLock(resolve(config.dataDir));
      if (!lock.ok) {
        console.error(alreadyRunning(resolve(config.dataDir), lock.holder, lock.file));
        process.exit(3);
      }
      if (lock.tookOverFrom) {
        console.error(
          `thingstead: taking over ${lock.file}: the thingstead that held it (pid ${lock.tookOverFrom.pid || 'unknown'}) is not running any more.`,
        );
      }
      if (!worker && config.cluster.workers > 1)
        return runWorkers(config.cluster.workers, () => lock.release());
      let platform: Platform;
      try {
        const { createPlatform } = await import('../platform/index.js');
        platform = await createPlatform(config);
      } catch (err) {
        lock.release();
        if (worker) reportToPrimary({ type: 'failed', message: (err as Error).message });
        const e = err as NodeJS.ErrnoException & { port?: number };
        if (e.code === 'EADDRINUSE') {
          console.error(
            `thingstead: port ${e.port ?? ''} is already in use. Choose another with the flags or THINGSTEAD_*_PORT (0 picks a free port).`,
          );
          process.exit(2);
        }
        throw err;
      }
      const stop = (signal: string) => {
        platform.logger.info({ signal }, 'shutting down');
        void platform.close().then(() => {
          lock.release();
          process.exit(0);
        });
      };
      // Handlers first: whoever reads the banner may signal at once (a signal without a listener kills).
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      if (worker) reportToPrimary({ type: 'ready', banner: banner(platform) });
      else console.error(banner(platform));
    });
}
