/**
 * Provisioning benchmark: registrations per second on one node (issue 12 target: at least 1,000/s; the
 * issue quotes Azure DPS at 1,000 per minute per service), on SQLite and PostgreSQL. Run:
 * `npx tsx bench/provisioning.ts [--stores sqlite,postgres] [--workloads pipeline,bulk,api,api+cert,mqtt] [--pipeline 10000] [--bulk 10000] [--api 3000] [--certs 300]
 * [--mqtt 200] [--bulk-concurrency 32] [--runs 3] [--out bench/results/provisioning.json]`.
 *
 * The whole platform runs in this process (`createPlatform`, as `thingstead up`), log level warn. Each
 * workload goes through the one provisioning pipeline (template -> evaluate -> journaled apply -> trace):
 * - pipeline: the pipeline called in-process (what every flow runs; no HTTP, SDK or file), 32 at once,
 *             the bulk template; the node's capacity without a client in the same process;
 * - bulk:     StartThingRegistrationTask over a local file of N lines, from the call until
 *             DescribeThingRegistrationTask says Completed (thing + attributes + group per line);
 * - api:      RegisterThing through @aws-sdk/client-iot over HTTP (SigV4), 32 in flight, same template;
 * - api+cert: RegisterThing with a device certificate per call (CertificatePem, made before the clock
 *             starts): certificate registered, policy attached, thing made, certificate attached, ACTIVE;
 * - mqtt:     the device flow over MQTT.js with a claim certificate (mutual TLS): create-from-csr (CSRs made
 *             before the clock starts; the platform signs each) then provision, 16 connections.
 * Each is run `--runs` times on a fresh platform; the median rate is reported beside the machine and load.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import mqtt from 'mqtt';
import * as x509 from '@peculiar/x509';
import {
  CreatePolicyCommand,
  CreateProvisioningClaimCommand,
  CreateProvisioningTemplateCommand,
  CreateThingGroupCommand,
  DescribeThingRegistrationTaskCommand,
  IoTClient,
  RegisterThingCommand,
  StartThingRegistrationTaskCommand,
} from '@aws-sdk/client-iot';
import { loadConfig } from '../src/config/index.js';
import { createKeysAndCertificate } from '../src/identity/index.js';
import { createPlatform, type Platform } from '../src/platform/index.js';
import { arg, machine, median, sleep } from './lib/common.js';

x509.cryptoProvider.set(webcrypto as never);

const STORES = arg('stores', 'sqlite').split(',');
const BULK = Number(arg('bulk', '10000'));
const API = Number(arg('api', '3000'));
const CERTS = Number(arg('certs', '300'));
const MQTT_N = Number(arg('mqtt', '200'));
const RUNS = Number(arg('runs', '3'));
const PIPELINE = Number(arg('pipeline', '10000'));
const ONLY = arg('workloads', 'pipeline,bulk,api,api+cert,mqtt').split(',');
const OUT = arg('out', '');
const BULK_CONCURRENCY = Number(arg('bulk-concurrency', '32'));
const PG_URL = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const THING_TEMPLATE = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' } },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        ThingName: { 'Fn::Join': ['-', ['b', { Ref: 'SerialNumber' }]] },
        AttributePayload: { serial: { Ref: 'SerialNumber' } },
        ThingGroups: ['bench'],
      },
    },
  },
});
const CERT_TEMPLATE = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' }, Cert: { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificatePem: { Ref: 'Cert' }, Status: 'ACTIVE' },
    },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'bench-device' } },
  },
});
const FLEET_TEMPLATE = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' }, 'AWS::IoT::Certificate::Id': { Type: 'String' } },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: { ThingName: { 'Fn::Join': ['-', ['m', { Ref: 'SerialNumber' }]] } },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
    },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'bench-device' } },
  },
  DeviceConfiguration: { ok: '1' },
});

interface Bench {
  platform: Platform;
  iot: IoTClient;
  close(): Promise<void>;
}

async function start(store: string): Promise<Bench> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-bench-prov-'));
  let schema: string | null = null;
  let databaseUrl: string | null = null;
  if (store === 'postgres') {
    schema = `bench_prov_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    const u = new URL(PG_URL);
    u.searchParams.set('options', `-c search_path=${schema}`);
    databaseUrl = u.toString();
  }
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      databaseUrl,
      logLevel: 'warn',
      http: { port: 0 },
      mqtt: { port: 0, tlsPort: 0 },
      provisioning: { keyType: 'ec-p256', bulkConcurrency: BULK_CONCURRENCY },
    },
  });
  const platform = await createPlatform(config);
  const key = await platform.credentials.create(`bench-${Date.now()}`, 'admin');
  const iot = new IoTClient({
    endpoint: platform.endpoints.http,
    region: config.region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'bench' }));
  await iot.send(
    new CreatePolicyCommand({
      policyName: 'bench-device',
      policyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
      }),
    }),
  );
  return {
    platform,
    iot,
    async close() {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (schema) {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`);
        await c.end();
      }
    },
  };
}

async function pool(total: number, concurrency: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++);
    }),
  );
}

async function pipeline(b: Bench): Promise<number> {
  const t0 = performance.now();
  await pool(PIPELINE, 32, async (i) => {
    const r = await b.platform.provisioning.pipeline.provision({
      flow: 'api',
      template: { body: THING_TEMPLATE },
      templateType: 'FLEET_PROVISIONING',
      parameters: { SerialNumber: `p${i}` },
    });
    if (!r.ok) throw new Error(r.refusal.error.message);
  });
  return PIPELINE / ((performance.now() - t0) / 1000);
}

async function bulk(b: Bench): Promise<number> {
  const dir = join(b.platform.endpoints.dataDir, 'bulk', 'bench');
  mkdirSync(dir, { recursive: true });
  const lines = Array.from({ length: BULK }, (_, i) => JSON.stringify({ SerialNumber: `k${i}` }));
  writeFileSync(join(dir, 'lines.jsonl'), lines.join('\n'));
  const t0 = performance.now();
  const { taskId } = await b.iot.send(
    new StartThingRegistrationTaskCommand({
      templateBody: THING_TEMPLATE,
      inputFileBucket: 'bench',
      inputFileKey: 'lines.jsonl',
      roleArn: 'arn:aws:iam::123456789012:role/bench',
    }),
  );
  for (;;) {
    const d = await b.iot.send(new DescribeThingRegistrationTaskCommand({ taskId }));
    if (d.status === 'Completed') {
      if (d.successCount !== BULK) throw new Error(`bulk: ${d.successCount} of ${BULK} succeeded`);
      break;
    }
    if (d.status !== 'InProgress') throw new Error(`bulk task ${d.status}: ${d.message}`);
    await sleep(20);
  }
  return BULK / ((performance.now() - t0) / 1000);
}

async function api(b: Bench): Promise<number> {
  const t0 = performance.now();
  await pool(API, 32, (i) =>
    b.iot.send(
      new RegisterThingCommand({ templateBody: THING_TEMPLATE, parameters: { SerialNumber: `a${i}` } }),
    ),
  );
  return API / ((performance.now() - t0) / 1000);
}

async function apiCert(b: Bench): Promise<number> {
  const ca = { certPem: b.platform.tls.caPem, keyPem: b.platform.tls.caKeyPem! };
  const certs: string[] = [];
  for (let i = 0; i < CERTS; i++)
    certs.push(
      (await createKeysAndCertificate(ca, { keyType: 'ec-p256', commonName: `c${i}` })).certificatePem,
    );
  const t0 = performance.now();
  await pool(CERTS, 32, (i) =>
    b.iot.send(
      new RegisterThingCommand({
        templateBody: CERT_TEMPLATE,
        parameters: { SerialNumber: `c${i}`, Cert: certs[i]! },
      }),
    ),
  );
  return CERTS / ((performance.now() - t0) / 1000);
}

async function mqttFlow(b: Bench): Promise<number> {
  await b.iot.send(
    new CreateProvisioningTemplateCommand({
      templateName: 'bench-fleet',
      templateBody: FLEET_TEMPLATE,
      provisioningRoleArn: 'arn:aws:iam::123456789012:role/bench',
      enabled: true,
    }),
  );
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const csrs: string[] = [];
  for (let i = 0; i < MQTT_N; i++) {
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    csrs.push(
      (
        await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=m${i}`, keys, signingAlgorithm: alg })
      ).toString('pem'),
    );
  }
  const CONNS = 16;
  const clients = await Promise.all(
    Array.from({ length: CONNS }, async (_, c) => {
      const claim = await b.iot.send(new CreateProvisioningClaimCommand({ templateName: 'bench-fleet' }));
      const client = await mqtt.connectAsync(`mqtts://localhost:${b.platform.endpoints.mqttsPort}`, {
        clientId: `claim-${c}`,
        cert: claim.certificatePem!,
        key: claim.keyPair!.PrivateKey!,
        ca: b.platform.tls.caPem,
        reconnectPeriod: 0,
      });
      const waiting = new Map<string, (body: any) => void>();
      client.on('message', (topic, payload) => {
        const base = topic.replace(/\/(accepted|rejected)$/, '');
        const body = JSON.parse(payload.toString());
        if (topic.endsWith('/rejected')) throw new Error(`${base}: ${JSON.stringify(body)}`);
        waiting.get(base)?.(body);
      });
      await client.subscribeAsync(
        [
          '$aws/certificates/create-from-csr/json/accepted',
          '$aws/provisioning-templates/bench-fleet/provision/json/accepted',
        ],
        { qos: 1 },
      );
      const ask = (topic: string, body: unknown) =>
        new Promise<any>((resolve) => {
          waiting.set(topic, resolve);
          void client.publishAsync(topic, JSON.stringify(body), { qos: 1 });
        });
      return { client, ask };
    }),
  );
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async ({ ask }) => {
      for (let i = next++; i < MQTT_N; i = next++) {
        const cert = await ask('$aws/certificates/create-from-csr/json', {
          certificateSigningRequest: csrs[i],
        });
        await ask('$aws/provisioning-templates/bench-fleet/provision/json', {
          certificateOwnershipToken: cert.certificateOwnershipToken,
          parameters: { SerialNumber: String(i) },
        });
      }
    }),
  );
  const rate = MQTT_N / ((performance.now() - t0) / 1000);
  await Promise.all(clients.map((c) => c.client.endAsync()));
  return rate;
}

const WORKLOADS: Array<[string, (b: Bench) => Promise<number>, () => number]> = [
  ['pipeline', pipeline, () => PIPELINE],
  ['bulk', bulk, () => BULK],
  ['api', api, () => API],
  ['api+cert', apiCert, () => CERTS],
  ['mqtt', mqttFlow, () => MQTT_N],
];

async function main() {
  const m = machine();
  console.log(
    `machine: ${m.model}, ${m.cores} cores, Node ${m.node}, load average ${m.loadAtStart} at start`,
  );
  const results: Array<Record<string, unknown>> = [];
  for (const store of STORES) {
    for (const [name, fn, count] of WORKLOADS) {
      if (count() <= 0 || !ONLY.includes(name)) continue;
      const rates: number[] = [];
      const loads: string[] = [];
      for (let r = 0; r < RUNS; r++) {
        const b = await start(store);
        try {
          loads.push(loadavg()[0]!.toFixed(1));
          const rate = await fn(b);
          rates.push(rate);
          console.log(
            `${store} ${name} run ${r + 1}: ${count()} registrations, ${rate.toFixed(0)}/s (load ${loads.at(-1)})`,
          );
        } finally {
          await b.close();
        }
      }
      const med = median(rates);
      results.push({
        store,
        workload: name,
        registrations: count(),
        runs: rates.map((x) => Math.round(x)),
        medianPerSecond: Math.round(med),
        perMinute: Math.round(med * 60),
        vsTarget1000PerSecond: +(med / 1000).toFixed(2),
        vsAzureDps1000PerMinute: +((med * 60) / 1000).toFixed(1),
        loadAverages: loads,
      });
    }
  }
  console.log(
    '\n| store | workload | registrations | median /s | runs /s | vs 1,000/s | vs Azure DPS 1,000/min |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.store} | ${r.workload} | ${r.registrations} | ${r.medianPerSecond} | ${(r.runs as number[]).join(', ')} | ${r.vsTarget1000PerSecond}x | ${r.vsAzureDps1000PerMinute}x |`,
    );
  if (OUT)
    writeFileSync(
      OUT,
      JSON.stringify({ machine: { ...m, loadAtEnd: loadavg()[0]!.toFixed(1) }, results }, null, 2) + '\n',
    );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
