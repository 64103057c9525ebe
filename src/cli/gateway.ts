import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  capYoungGeneration,
  loadIdentity,
  MappingError,
  parseMapping,
  provisionByClaim,
  ProvisioningError,
  startGateway,
} from '../gateway/index.js';
import { createMetricsRegistry } from '../observability/index.js';

/**
 * A usage error of `thingstead gateway`: printed as `thingstead: <message>`, exit status 2, as main.ts does for
 * the other commands' CliError. The gateway keeps its own so that it imports neither connection.ts (the HTTP API
 * client: the API server module and its zod schemas) nor the config schema, which it needs only to find
 * endpoints.json when --endpoint is not given (loaded then). Memory budget: docs/gateway.md.
 */
class GatewayUsageError extends Error {}
const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `thingstead gateway`: the edge gateway (src/gateway) as a command. Identity, in this order: --cert/--key;
 * the identity a claim provisioning left in `<state dir>/identity`; a folder written by `thingstead onboard`
 * (--device-dir, default ./<thing>); else provisioning by claim (--claim-cert, --claim-key, --template).
 * The endpoint comes from --endpoint or the platform's `<data dir>/endpoints.json`.
 */
export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description(
      'Run the edge gateway: read Modbus TCP, OPC UA and LAN MQTT devices per a mapping file, forward to the platform, buffer to disk while offline.',
    )
    .requiredOption(
      '--mapping <file>',
      'mapping file (JSON with // comments): devices, tags, topics; see docs/gateway.md',
    )
    .option('--check', 'check the mapping file and exit (status 0 when good, 2 with every problem listed)')
    .option(
      '--thing <name>',
      'the gateway thing name and MQTT client id (not needed after claim provisioning)',
    )
    .option('--state-dir <dir>', 'queue, identity, LAN broker and OPC UA PKI (default ./gateway-data)')
    .option('--device-dir <dir>', 'folder written by `thingstead onboard` (default ./<thing>)')
    .option('--cert <file>', 'gateway certificate (default <device dir>/<thing>.cert.pem)')
    .option('--key <file>', 'gateway private key (default <device dir>/<thing>.private.key)')
    .option('--ca <file>', 'platform CA (default <device dir>/ca.pem)')
    .option('--endpoint <url>', 'mqtts://host:port (default: from <data dir>/endpoints.json)')
    .option('--data-dir <dir>', 'Thingstead data directory holding endpoints.json (default ./data)')
    .option(
      '--claim-cert <file>',
      'claim certificate, to provision by claim when the gateway has no identity',
    )
    .option('--claim-key <file>', 'claim private key')
    .option('--template <name>', 'fleet provisioning template to register with')
    .option('--param <k=v>', 'template parameter (repeatable), e.g. --param SerialNumber=0042', collect)
    .option('--queue-max-mb <n>', 'disk queue bound in MiB; the oldest records are dropped past it', '256')
    .option('--queue-max-age <hours>', 'records older than this are dropped unsent', '168')
    .option(
      '--fsync <policy>',
      'interval (every second, default), always (every record) or never',
      'interval',
    )
    .option('--max-inflight <n>', 'records sent and not yet acknowledged at most', '100')
    .option('--health-interval <s>', 'seconds between health reports in the shadow', '30')
    .option(
      '--semi-space-mb <n>',
      "cap V8's young generation at n MiB per semi-space (less RSS, more scavenges; 0: V8's default of 16)",
      '4',
    )
    .option('--metrics-port <port>', 'serve /metrics and /healthz on 127.0.0.1:<port>')
    .option(
      '--opcua-trust-unknown',
      'trust OPC UA server certificates on first use (default: only <state dir>/opcua-pki/trusted)',
    )
    .option(
      '--trusted-key <file>',
      'firmware jobs: a public key (PEM) whose signatures to accept (repeatable)',
      collect,
    )
    .option(
      '--install <command>',
      'firmware jobs: install hook (THINGSTEAD_OTA_FILE etc.; exit 0 = installed)',
    )
    .option('--rollback <command>', 'firmware jobs: rollback hook')
    .option('--current-version <v>', 'firmware jobs: installed version when none is recorded', '0.0.0')
    .action(async (flags: Record<string, any>) => {
      try {
        await runGateway(flags);
      } catch (err) {
        if (!(err instanceof GatewayUsageError)) throw err;
        console.error(`thingstead: ${err.message}`);
        process.exit(2);
      }
    });
}

async function runGateway(flags: Record<string, any>): Promise<void> {
  const mappingFile = resolve(String(flags.mapping));
  if (!existsSync(mappingFile)) throw new GatewayUsageError(`mapping file ${mappingFile} does not exist`);
  let mapping;
  try {
    mapping = parseMapping(readFileSync(mappingFile, 'utf8'), String(flags.mapping));
  } catch (err) {
    if (err instanceof MappingError) throw new GatewayUsageError(err.message);
    throw err;
  }
  if (flags.check) {
    const tags = mapping.devices.reduce((n, d) => n + d.tags.length, 0);
    console.log(`${flags.mapping}: good (${mapping.devices.length} devices, ${tags} tags)`);
    return;
  }
  const read = (file: string, what: string) => {
    if (!existsSync(file)) throw new GatewayUsageError(`${what} ${file} does not exist`);
    return readFileSync(file, 'utf8');
  };
  const stateDir = resolve(flags.stateDir ? String(flags.stateDir) : 'gateway-data');
  let endpoint = flags.endpoint as string | undefined;
  let caFromEndpoints: string | undefined;
  if (!endpoint) {
    const { loadConfig } = await import('../config/index.js');
    const dataDir = resolve(
      loadConfig({ env: process.env, overrides: flags.dataDir ? { dataDir: flags.dataDir } : {} }).dataDir,
    );
    const file = join(dataDir, 'endpoints.json');
    const e = JSON.parse(read(file, 'endpoints file (or pass --endpoint)')) as {
      mqtts?: string;
      caFile?: string;
    };
    endpoint = e.mqtts ?? undefined;
    caFromEndpoints = e.caFile;
    if (!endpoint)
      throw new GatewayUsageError('the platform has no MQTT TLS port on: pass --endpoint mqtts://host:port');
  }

  // Identity.
  let thing = flags.thing as string | undefined;
  let cert: string;
  let key: string;
  let ca: string | undefined = flags.ca ? read(String(flags.ca), 'CA file') : undefined;
  const deviceDir = resolve(flags.deviceDir ? String(flags.deviceDir) : (thing ?? '.'));
  const provisioned = loadIdentity(join(stateDir, 'identity'));
  if (flags.cert || flags.key) {
    if (!thing) throw new GatewayUsageError('--cert and --key need --thing (the gateway thing name)');
    cert = read(String(flags.cert), 'certificate');
    key = read(String(flags.key), 'private key');
  } else if (provisioned) {
    thing = provisioned.thingName;
    cert = provisioned.certPem;
    key = provisioned.keyPem;
  } else if (thing && existsSync(join(deviceDir, `${thing}.cert.pem`))) {
    cert = read(join(deviceDir, `${thing}.cert.pem`), 'certificate');
    key = read(join(deviceDir, `${thing}.private.key`), 'private key');
    ca ??= existsSync(join(deviceDir, 'ca.pem')) ? read(join(deviceDir, 'ca.pem'), 'CA file') : undefined;
  } else if (flags.claimCert) {
    if (!flags.claimKey || !flags.template)
      throw new GatewayUsageError('provisioning by claim needs --claim-cert, --claim-key and --template');
    ca ??= caFromEndpoints ? read(caFromEndpoints, 'CA file') : undefined;
    const parameters: Record<string, string> = {};
    for (const p of (flags.param as string[] | undefined) ?? []) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new GatewayUsageError(`--param ${p}: expected name=value`);
      parameters[p.slice(0, eq)] = p.slice(eq + 1);
    }
    console.log(
      `no identity in ${join(stateDir, 'identity')}: provisioning by claim with template ${flags.template}`,
    );
    try {
      const id = await provisionByClaim({
        url: endpoint,
        ca,
        claimCert: read(String(flags.claimCert), 'claim certificate'),
        claimKey: read(String(flags.claimKey), 'claim key'),
        templateName: String(flags.template),
        parameters,
        dir: join(stateDir, 'identity'),
      });
      thing = id.thingName;
      cert = id.certPem;
      key = id.keyPem;
      console.log(`provisioned as ${thing} (certificate ${id.certificateId})`);
    } catch (err) {
      if (err instanceof ProvisioningError) throw new GatewayUsageError(err.message);
      throw err;
    }
  } else
    throw new GatewayUsageError(
      'the gateway has no identity. Give one of: --thing <name> with a `thingstead onboard <name>` folder ' +
        '(--device-dir), --thing with --cert and --key, or --claim-cert/--claim-key/--template to provision by claim.',
    );
  ca ??= caFromEndpoints && existsSync(caFromEndpoints) ? read(caFromEndpoints, 'CA file') : undefined;

  const jobs =
    flags.install || flags.trustedKey
      ? (() => {
          if (!flags.install || !flags.trustedKey)
            throw new GatewayUsageError(
              'firmware jobs need both --install <command> and --trusted-key <file>',
            );
          return {
            trustedKeys: (flags.trustedKey as string[]).map((f) => read(f, 'trusted key')),
            installCommand: String(flags.install),
            ...(flags.rollback ? { rollbackCommand: String(flags.rollback) } : {}),
            initialVersion: String(flags.currentVersion),
          };
        })()
      : undefined;
  const number = (name: string, v: unknown, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min)
      throw new GatewayUsageError(`--${name} must be a number >= ${min}, got ${String(v)}`);
    return n;
  };
  const fsync = String(flags.fsync);
  if (!['interval', 'always', 'never'].includes(fsync))
    throw new GatewayUsageError(`--fsync must be interval, always or never, got ${fsync}`);
  const semiSpaceMb = number('semi-space-mb', flags.semiSpaceMb, 0);
  if (semiSpaceMb > 0) capYoungGeneration(semiSpaceMb);
  const metrics = createMetricsRegistry({ processMetrics: true });
  const logLine = (event: string, fields?: Record<string, unknown>) =>
    console.log(`${new Date().toISOString()}  ${event}${fields ? `  ${JSON.stringify(fields)}` : ''}`);
  const gateway = await startGateway({
    thingName: thing,
    mqttUrl: endpoint,
    ca,
    cert,
    key,
    mapping,
    dataDir: stateDir,
    queue: {
      maxBytes: number('queue-max-mb', flags.queueMaxMb, 1) * 1024 * 1024,
      maxAgeMs: number('queue-max-age', flags.queueMaxAge, 0.01) * 3_600_000,
      fsync: fsync as 'interval',
    },
    maxInflight: number('max-inflight', flags.maxInflight, 1),
    healthIntervalMs: number('health-interval', flags.healthInterval, 1) * 1000,
    opcuaTrustUnknownServers: flags.opcuaTrustUnknown === true,
    ...(jobs ? { jobs } : {}),
    metrics,
    log: logLine,
  });
  let server: ReturnType<typeof createServer> | null = null;
  if (flags.metricsPort !== undefined) {
    server = createServer((req, res) => {
      if (req.url === '/metrics') {
        void metrics.metrics().then((text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        });
      } else if (req.url === '/healthz') {
        const h = gateway.health();
        res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(h));
      } else {
        res.writeHead(404).end('try /metrics or /healthz\n');
      }
    });
    server.listen(number('metrics-port', flags.metricsPort, 0), '127.0.0.1');
  }
  console.log(
    `gateway ${thing} -> ${endpoint}: ${mapping.devices.length} field devices, ` +
      `${gateway.queue.stats().pending} records waiting in ${join(stateDir, 'queue')}` +
      (gateway.localPort !== null ? `, LAN MQTT on port ${gateway.localPort}` : ''),
  );
  await new Promise<void>((done) => {
    const stop = () => {
      console.log('stopping: saving the queue position');
      server?.close();
      void gateway.close().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
