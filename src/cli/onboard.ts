import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { Command } from 'commander';
import { encodePath } from '../api/index.js';
import { loadConfig } from '../config/index.js';
import { CliError, call, connectionOptions, resolveConnection, type ConnectionFlags } from './connection.js';

/**
 * `thingstead onboard <thing> --out <dir>`: the first device in one command. Creates the thing, an EC
 * P-256 key pair (made here: the private key never crosses the network) and an ACTIVE certificate for it
 * from a CSR (CreateCertificateFromCsr), attached to the thing, attaches the least-privilege starter
 * policies (scoped to the thing through policy variables, reference §9.6: its client id, topics, jobs and
 * shadows), writes certificate, key and CA files, and prints a ready-to-run mosquitto_pub line.
 */

type Flags = ConnectionFlags & Record<string, any>;

export const STARTER_POLICY = 'ThingsteadDeviceStarter';
/**
 * The second starter policy: the thing's own shadows over MQTT. The shadow filters the Device SDK
 * subscribes to do not fit beside the rest in AWS's 2048 characters (reference §9.1), so they have their own.
 */
export const SHADOW_STARTER_POLICY = 'ThingsteadDeviceShadow';

const THING = '${iot:Connection.Thing.ThingName}';

/**
 * The starter policy: each thing may use its own client id, its own topics, jobs and file streams only, and its own
 * shadows over the HTTPS data planes (iot:Get/Update/DeleteThingShadow on `thing/{thing}` and
 * `thing/{thing}/{shadowName}`, reference §9.2).
 */
export function starterPolicyDocument(arnPrefix: string): string {
  // Its jobs, and the MQTT file streams firmware updates are delivered over (reference §8.3; docs/ota.md).
  const topics = [`things/${THING}/*`, `$aws/things/${THING}/jobs/*`, `$aws/things/${THING}/streams/*`];
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConnectAsItself',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: `${arnPrefix}:client/${THING}`,
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      {
        Sid: 'OwnTopics',
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: topics.map((t) => `${arnPrefix}:topic/${t}`),
      },
      {
        Sid: 'RetainOwnTopics',
        Effect: 'Allow',
        Action: 'iot:RetainPublish',
        Resource: `${arnPrefix}:topic/things/${THING}/*`,
      },
      {
        Sid: 'OwnFilters',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: topics.map((t) => `${arnPrefix}:topicfilter/${t}`),
      },
      {
        Sid: 'OwnShadowsOverHttps',
        Effect: 'Allow',
        Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow', 'iot:DeleteThingShadow'],
        Resource: [`${arnPrefix}:thing/${THING}`, `${arnPrefix}:thing/${THING}/*`],
      },
    ],
  });
}

/**
 * The filters the AWS IoT Device SDK v2 shadow clients subscribe to, below `.../shadow/` and
 * `.../shadow/name/{name}/` (reference §8.2): the request-response client (IotShadowClientv2) takes
 * `get/+` and `delete/+`, the older IotShadowClient `get/accepted`, `get/rejected`, ...; `get/*` covers both
 * (policy `*` spans levels, `+` is literal: §9.3) and nothing outside the get answers. No request topic
 * (`.../update`) and no `#` is among them.
 */
export const SHADOW_SDK_FILTERS = [
  'get/*',
  'delete/*',
  'update/accepted',
  'update/rejected',
  'update/delta',
  'update/documents',
] as const;

/**
 * The shadow starter policy: the thing's own classic and named shadows over MQTT and no other thing's:
 * iot:Publish and iot:Receive on `$aws/things/{thing}/shadow/*`, iot:Subscribe on the Device SDK's filters
 * only. Every resource names the thing through `${iot:Connection.Thing.ThingName}`, so one policy serves
 * every onboarded thing.
 */
export function shadowPolicyDocument(arnPrefix: string): string {
  const shadow = `$aws/things/${THING}/shadow`;
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'OwnShadowTopics',
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: `${arnPrefix}:topic/${shadow}/*`,
      },
      {
        Sid: 'OwnShadowFilters',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: ['', 'name/*/'].flatMap((named) =>
          SHADOW_SDK_FILTERS.map((f) => `${arnPrefix}:topicfilter/${shadow}/${named}${f}`),
        ),
      },
    ],
  });
}

/** The starter policies onboard creates when missing and attaches to every certificate it makes. */
export const STARTER_POLICIES: readonly { name: string; document: (arnPrefix: string) => string }[] = [
  { name: STARTER_POLICY, document: starterPolicyDocument },
  { name: SHADOW_STARTER_POLICY, document: shadowPolicyDocument },
];

x509.cryptoProvider.set(webcrypto as never);
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A fresh EC P-256 key pair (PKCS#8 PEM, which OpenSSL/mosquitto and Node/MQTT.js read) and a CSR for it. */
async function deviceKeyAndCsr(thingName: string): Promise<{ privateKeyPem: string; csrPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${thingName}`,
    keys,
    signingAlgorithm: EC_P256,
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${b64.replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`,
    csrPem: csr.toString('pem'),
  };
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
  options: {
    thingName: string;
    outDir: string;
    host: string;
    port: number | null;
    caPem?: string;
    /** Replace an existing key and certificate in outDir (otherwise refused before anything is created). */
    force?: boolean;
  },
): Promise<OnboardResult> {
  const { thingName } = options;
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) {
    throw new CliError(`thing name must match [a-zA-Z0-9:_-]{1,128}; got ${JSON.stringify(thingName)}`);
  }
  const out = resolve(options.outDir);
  const files = {
    certificate: join(out, `${thingName}.cert.pem`),
    privateKey: join(out, `${thingName}.private.key`),
    ca: join(out, 'ca.pem'),
  };
  const existing = [files.privateKey, files.certificate].filter((f) => existsSync(f));
  if (existing.length > 0 && !options.force) {
    throw new CliError(
      `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: ${thingName} looks onboarded already. ` +
        'Nothing was changed. Re-run with --force to make a new key and certificate and replace these files ' +
        '(the old certificate stays ACTIVE until you deactivate it), or choose another --out directory.',
    );
  }
  const key = await deviceKeyAndCsr(thingName);
  try {
    await call(conn, 'POST', `/things/${encodePath(thingName)}`, { body: {} });
  } catch (err) {
    // An existing thing (created with attributes) is onboarded as it is.
    if (!/ResourceAlreadyExistsException/.test((err as Error).message)) throw err;
  }
  const cert = await call(conn, 'POST', '/certificates', {
    query: { setAsActive: true },
    body: { certificateSigningRequest: key.csrPem },
  });
  const certificateArn = cert.certificateArn as string;
  await call(conn, 'PUT', `/things/${encodePath(thingName)}/principals`, {
    headers: { 'x-amzn-principal': certificateArn },
  });
  const arnPrefix = certificateArn.split(':cert/')[0]!;
  for (const policy of STARTER_POLICIES) {
    // An existing starter policy is kept as it is (an operator may have edited it).
    try {
      await call(conn, 'GET', `/policies/${policy.name}`);
    } catch {
      await call(conn, 'POST', `/policies/${policy.name}`, {
        body: { policyDocument: policy.document(arnPrefix) },
      });
    }
    await call(conn, 'PUT', `/target-policies/${policy.name}`, { body: { target: certificateArn } });
  }

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
  mkdirSync(out, { recursive: true, mode: 0o700 });
  writeFileSync(files.certificate, cert.certificatePem as string, { mode: 0o644 });
  writeFileSync(files.privateKey, key.privateKeyPem, { mode: 0o600 });
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
      .option('--mqtt-port <port>', 'MQTT over TLS port (default: from endpoints.json, else 8883)')
      .option('--force', 'replace an existing key and certificate in --out (makes a new certificate)'),
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
      force: flags.force === true,
    });
    if (flags.json) {
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    console.log(
      [
        `Onboarded ${r.thingName}`,
        `  certificate  ${r.files.certificate}   (${r.certificateId})`,
        `  private key  ${r.files.privateKey}   (EC P-256, mode 0600; made here and never sent, keep it on the device)`,
        `  CA           ${r.files.ca}`,
        `  policies     ${STARTER_POLICY} (own client id, things/${r.thingName}/*, its jobs), ${SHADOW_STARTER_POLICY} (its shadows)`,
        '',
        'Publish your first message:',
        `  ${r.command}`,
      ].join('\n'),
    );
  });
}
