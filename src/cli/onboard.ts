import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { encodePath } from '../api/index.js';
import { loadConfig } from '../config/index.js';
import { CliError, call, connectionOptions, resolveConnection, type ConnectionFlags } from './connection.js';

/**
 * `thingstead onboard <thing> --out <dir>`: the first device in one command. Creates the thing, an ACTIVE
 * key pair and certificate attached to it, attaches the least-privilege starter policy (scoped to the
 * thing through policy variables, reference §9.6), writes certificate, key and CA files, and prints a
 * ready-to-run mosquitto_pub line.
 */

type Flags = ConnectionFlags & Record<string, any>;

export const STARTER_POLICY = 'ThingsteadDeviceStarter';

/** The starter policy: each thing may use its own client id, its own topics, shadow and jobs only. */
export function starterPolicyDocument(arnPrefix: string): string {
  const thing = '${iot:Connection.Thing.ThingName}';
  const topics = [`things/${thing}/*`, `$aws/things/${thing}/shadow/*`, `$aws/things/${thing}/jobs/*`];
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConnectAsItself',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: `${arnPrefix}:client/${thing}`,
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      {
        Sid: 'OwnTopics',
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive', 'iot:RetainPublish'],
        Resource: topics.map((t) => `${arnPrefix}:topic/${t}`),
      },
      {
        Sid: 'OwnFilters',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: topics.map((t) => `${arnPrefix}:topicfilter/${t}`),
      },
    ],
  });
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface OnboardResult {
  thingName: string;
  certificateId: string;
  certificateArn: string;
  files: { certificate: string; privateKey: string; ca: string };
  command: string;
}

/** Onboard one thing through the API (used by the CLI and its test). */
export async function onboard(
  conn: ReturnType<typeof resolveConnection>,
  options: { thingName: string; outDir: string; host: string; port: number | null; caPem?: string },
): Promise<OnboardResult> {
  const { thingName } = options;
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) {
    throw new CliError(`thing name must match [a-zA-Z0-9:_-]{1,128}; got ${JSON.stringify(thingName)}`);
  }
  try {
    await call(conn, 'POST', `/things/${encodePath(thingName)}`, { body: {} });
  } catch (err) {
    // An existing thing (created with attributes) is onboarded as it is.
    if (!/ResourceAlreadyExistsException/.test((err as Error).message)) throw err;
  }
  const cert = await call(conn, 'POST', '/keys-and-certificate', { query: { setAsActive: true } });
  const certificateArn = cert.certificateArn as string;
  await call(conn, 'PUT', `/things/${encodePath(thingName)}/principals`, {
    headers: { 'x-amzn-principal': certificateArn },
  });
  const arnPrefix = certificateArn.split(':cert/')[0]!;
  try {
    await call(conn, 'GET', `/policies/${STARTER_POLICY}`);
  } catch {
    await call(conn, 'POST', `/policies/${STARTER_POLICY}`, {
      body: { policyDocument: starterPolicyDocument(arnPrefix) },
    });
  }
  await call(conn, 'PUT', `/target-policies/${STARTER_POLICY}`, { body: { target: certificateArn } });

  let caPem = options.caPem;
  if (!caPem) {
    const d = await call(conn, 'GET', `/certificates/${cert.certificateId as string}`);
    const ca = await call(
      conn,
      'GET',
      `/cacertificate/${d.certificateDescription.caCertificateId as string}`,
    );
    caPem = ca.certificateDescription.certificatePem as string;
  }
  const out = resolve(options.outDir);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const files = {
    certificate: join(out, `${thingName}.cert.pem`),
    privateKey: join(out, `${thingName}.private.key`),
    ca: join(out, 'ca.pem'),
  };
  writeFileSync(files.certificate, cert.certificatePem as string, { mode: 0o644 });
  writeFileSync(files.privateKey, cert.keyPair.PrivateKey as string, { mode: 0o600 });
  chmodSync(files.privateKey, 0o600);
  writeFileSync(files.ca, caPem, { mode: 0o644 });
  const command = [
    'mosquitto_pub',
    ...['-h', options.host, '-p', String(options.port ?? 8883)],
    ...['--cafile', files.ca, '--cert', files.certificate, '--key', files.privateKey],
    ...['-i', thingName, '-t', `things/${thingName}/hello`, '-m', `hello from ${thingName}`, '-q', '1'],
  ]
    .map(shellQuote)
    .join(' ');
  return { thingName, certificateId: cert.certificateId as string, certificateArn, files, command };
}

export function registerOnboard(program: Command): void {
  connectionOptions(
    program
      .command('onboard <thing>')
      .description(
        'First device in one command: thing, certificate, starter policy, files and a mosquitto_pub line.',
      )
      .requiredOption('--out <dir>', 'directory for the certificate, private key and CA files')
      .option('--mqtt-host <host>', 'host devices connect to (default 127.0.0.1)')
      .option('--mqtt-port <port>', 'MQTT over TLS port (default: from endpoints.json, else 8883)'),
  ).action(async (thing: string, _opts: unknown, cmd: Command) => {
    const flags = cmd.optsWithGlobals<Flags>();
    const conn = resolveConnection(flags);
    // A local platform: its endpoints.json knows the TLS port and the CA file.
    const dataDir = resolve(
      loadConfig({ env: process.env, overrides: flags.dataDir ? { dataDir: flags.dataDir } : {} }).dataDir,
    );
    let port: number | null = flags.mqttPort ? Number(flags.mqttPort) : null;
    let caPem: string | undefined;
    const endpointsFile = join(dataDir, 'endpoints.json');
    if (existsSync(endpointsFile)) {
      const e = JSON.parse(readFileSync(endpointsFile, 'utf8')) as { mqttsPort?: number; caFile?: string };
      port ??= e.mqttsPort ?? null;
      if (e.caFile && existsSync(e.caFile)) caPem = readFileSync(e.caFile, 'utf8');
    }
    const r = await onboard(conn, {
      thingName: thing,
      outDir: flags.out,
      host: flags.mqttHost ?? '127.0.0.1',
      port,
      caPem,
    });
    if (flags.json) {
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    console.log(
      [
        `Onboarded ${r.thingName}`,
        `  certificate  ${r.files.certificate}   (${r.certificateId})`,
        `  private key  ${r.files.privateKey}   (mode 0600; shown once, keep it on the device)`,
        `  CA           ${r.files.ca}`,
        `  policy       ${STARTER_POLICY} (own client id, things/${r.thingName}/*, its shadow and jobs)`,
        '',
        'Publish your first message:',
        `  ${r.command}`,
      ].join('\n'),
    );
  });
}
