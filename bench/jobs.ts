/**
 * Jobs rollout benchmark: job executions notified per minute on one node, for a job without a rollout rate
 * (everything launched as fast as the node can), on SQLite and PostgreSQL. Run: `npx tsx bench/jobs.ts
 * [--things 1000,10000] [--stores sqlite,postgres] [--targets things,group] [--devices 1000]
 * [--out bench/results/jobs.json]`.
 *
 * The whole platform runs in this process (`createPlatform`, the same composition `thingstead up` runs,
 * default jobs.tickMs and minuteMs, log level warn). For each fleet size N and target shape it creates N
 * things in-process, then CreateJob through `@aws-sdk/client-iot` over HTTP (SigV4) with the N thing ARNs
 * listed individually (`things`) or one thing-group ARN holding them (`group`), and measures from the
 * moment CreateJob is sent:
 * - created: QUEUED executions written (the rollout's launch rate; read from the executions' queuedAt);
 * - notified: `$aws/things/{thing}/jobs/notify-next` messages received by MQTT.js clients in a separate
 *   process (so the subscriber does not share this process's event loop). By default one MQTT.js
 *   connection subscribes to `$aws/things/+/jobs/notify-next` (QoS 1) and receives every thing's message:
 *   the broker does the same per-message routing and delivery it does for N devices, without N sockets.
 *   With `--devices K` (K <= N) the first K things instead each get their own MQTT.js connection with its
 *   client id and subscription, to show what per-device connections cost.
 * Rates are N / seconds × 60. Prints one line per run and a Markdown table at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mqtt from 'mqtt';
import { CreateJobCommand, IoTClient } from '@aws-sdk/client-iot';
import { loadConfig } from '../src/config/index.js';
import { createPlatform, type Platform } from '../src/platform/index.js';
import { arg } from './lib/common.js';

const thingName = (i: number) => `bench-${String(i).padStart(6, '0')}`;

// ---- the subscriber process ------------------------------------------------------------------------

/**
 * Child: connect, subscribe, say `ready`, then report the time (performance.timeOrigin + now, epoch ms)
 * of each 1% of the expected notify-next messages and of the last one.
 */
async function subscriber(): Promise<void> {
  const url = arg('url', '');
  const expected = Number(arg('expect', '0'));
  const devices = Number(arg('devices', '0'));
  const clients: mqtt.MqttClient[] = [];
  let received = 0;
  const seen = new Set<string>();
  const onMessage = (topic: string) => {
    if (!topic.endsWith('/jobs/notify-next')) return;
    received++;
    seen.add(topic);
    if (received === expected) process.send!({ done: Date.now(), received, distinct: seen.size });
  };
  if (devices > 0) {
    // One connection per device, 200 handshakes in flight.
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < devices) {
          const i = next++;
          const c = await mqtt.connectAsync(url, {
            clientId: thingName(i),
            protocolVersion: 5,
            reconnectPeriod: 0,
          });
          c.on('message', onMessage);
          await c.subscribeAsync(`$aws/things/${thingName(i)}/jobs/notify-next`, { qos: 1 });
          clients.push(c);
        }
      }),
    );
  } else {
    const c = await mqtt.connectAsync(url, {
      clientId: 'bench-jobs-sub',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    c.on('message', onMessage);
    await c.subscribeAsync('$aws/things/+/jobs/notify-next', { qos: 1 });
    clients.push(c);
  }
  process.send!({ ready: true });
  process.on('message', (m: { report?: boolean }) => {
    if (m.report) process.send!({ received, distinct: seen.size });
  });
  process.on('disconnect', () => {
    for (const c of clients) c.end(true);
    process.exit(0);
  });
}

// ---- the bench -------------------------------------------------------------------------------------

interface Run {
  store: string;
  things: number;
  targets: string;
  subscribers: string;
  createdPerMin: number;
  notifiedPerMin: number;
  createSeconds: number;
  notifySeconds: number;
  received: number;
}

async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_jobs_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return {
    url: `${base}${base.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function pool(total: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) await fn(next++);
    }),
  );
}

function startSubscriber(url: string, expected: number, devices: number): Promise<ChildProcess> {
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--subscriber', '--url', url, '--expect', String(expected), '--devices', String(devices)],
    { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`subscriber exited (${code})`)));
    child.once('message', (m: { ready?: boolean }) => {
      if (m.ready) resolve(child);
    });
  });
}

async function runOne(store: string, n: number, targets: 'things' | 'group', devices: number): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-bench-jobs-'));
  const pgSchema = store === 'postgres' ? await freshPostgres() : null;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      databaseUrl: pgSchema?.url ?? null,
      logLevel: 'warn',
      http: { port: 0 },
      mqtt: { port: 0, tlsPort: 0, allowAnonymous: true },
      // The one wildcard subscriber stands for N devices: its session may hold N messages, where a device
      // session holds 1,000 (the default); nothing else differs from `thingstead up`.
      limits: { maxQueuedPerSession: 1_000_000 },
    },
  });
  const platform: Platform = await createPlatform(config);
  let child: ChildProcess | null = null;
  try {
    await pool(n, 16, (i) => platform.registry.createThing({ thingName: thingName(i) }));
    const arn = (type: string, name: string) =>
      `arn:aws:iot:${config.region}:${config.accountId}:${type}/${name}`;
    let jobTargets: string[];
    if (targets === 'group') {
      await platform.registry.createThingGroup({ thingGroupName: 'bench-fleet' });
      await pool(n, 16, (i) =>
        platform.registry.addThingToThingGroup({ thingGroupName: 'bench-fleet', thingName: thingName(i) }),
      );
      jobTargets = [arn('thinggroup', 'bench-fleet')];
    } else jobTargets = Array.from({ length: n }, (_, i) => arn('thing', thingName(i)));
    const key = await platform.credentials.create('bench-jobs', 'admin');
    const iot = new IoTClient({
      endpoint: platform.endpoints.http,
      region: config.region,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    const expected = devices > 0 ? Math.min(devices, n) : n;
    child = await startSubscriber(`mqtt://127.0.0.1:${platform.endpoints.mqttPort}`, expected, devices);
    const done = new Promise<{ done: number; received: number }>((resolve) =>
      child!.on('message', (m: { done?: number; received: number }) => {
        if (m.done !== undefined) resolve({ done: m.done, received: m.received });
        else console.error(`  subscriber received ${m.received}`);
      }),
    );
    const jobId = `bench-${targets}-${n}`;
    const t0 = Date.now();
    const p0 = performance.now();
    await iot.send(new CreateJobCommand({ jobId, targets: jobTargets, document: '{"operation":"bench"}' }));
    const createCall = performance.now() - p0;
    // Every 5 s (a slow run): executions by status, and what the subscriber has received.
    const progress = setInterval(() => {
      void platform.jobs.store.counts(jobId).then((c) => {
        console.error(`  ${((Date.now() - t0) / 1000).toFixed(1)} s: executions ${JSON.stringify(c)}`);
        child?.send({ report: true });
      });
    }, 5000);
    const notified = await done;
    clearInterval(progress);
    const executions = await platform.jobs.store.listForJob(jobId, { limit: n + 1 });
    const lastQueued = Math.max(...executions.map((e) => e.queuedAt));
    iot.destroy();
    const createSeconds = (lastQueued - t0) / 1000;
    const notifySeconds = (notified.done - t0) / 1000;
    console.error(
      `  CreateJob call ${createCall.toFixed(0)} ms; ${executions.length} executions in ${createSeconds.toFixed(2)} s; ` +
        `${notified.received} notify-next in ${notifySeconds.toFixed(2)} s`,
    );
    if (executions.length !== n) throw new Error(`expected ${n} executions, found ${executions.length}`);
    return {
      store,
      things: n,
      targets,
      subscribers: devices > 0 ? `${devices} connections` : '1 wildcard',
      createdPerMin: Math.round((n / createSeconds) * 60),
      notifiedPerMin: Math.round((expected / notifySeconds) * 60),
      createSeconds,
      notifySeconds,
      received: notified.received,
    };
  } finally {
    child?.kill();
    await platform.close();
    await pgSchema?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = arg('things', '1000,10000').split(',').map(Number);
  const stores = arg('stores', 'sqlite,postgres').split(',');
  const shapes = arg('targets', 'things,group').split(',') as Array<'things' | 'group'>;
  const devices = Number(arg('devices', '0'));
  const runs: Run[] = [];
  for (const store of stores)
    for (const n of sizes)
      for (const shape of shapes) {
        console.error(
          `${store}: ${n} things as ${shape}${devices ? `, ${devices} device connections` : ''} ...`,
        );
        runs.push(await runOne(store, n, shape, devices));
      }
  const cpu = cpus()[0]?.model ?? 'unknown';
  const machine = `${cpu}, ${cpus().length} cores, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}`;
  console.log(`\nMachine: ${machine}\n`);
  const out = arg('out', '');
  if (out)
    writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), machine, runs }, null, 2) + '\n');
  console.log(
    '| store | things | targets | subscribers | created/min | notified/min | created in | notified in |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of runs)
    console.log(
      `| ${r.store} | ${r.things} | ${r.targets} | ${r.subscribers} | ${r.createdPerMin.toLocaleString('en')} | ` +
        `${r.notifiedPerMin.toLocaleString('en')} | ${r.createSeconds.toFixed(2)} s | ${r.notifySeconds.toFixed(2)} s |`,
    );
}

if (process.argv.includes('--subscriber')) await subscriber();
else await main();
