/**
 * Cluster benchmark (issue 14), every configuration in one run on this machine, interleaved runs, medians:
 * - fan-in: P publisher connections send QoS 0 as fast as the gate allows to `bench/{i}`; S subscriber
 *   connections share `$share/ingest/bench/#` (how consumers scale out), so each message is delivered once.
 *   Configurations: `single` (one process, no NATS: today's broker), `workers1` (one process in cluster
 *   mode: routing through NATS), `workers2` (`thingstead up --workers 2`: two processes sharing the port).
 *   Reported: delivered msg/s and the ratio to `single` / `workers1`.
 * - latency: two cluster nodes (separate processes), 1,000 msg/s offered; publish on A and receive on A,
 *   then publish on A and receive on B; p50/p99 publish-to-delivery and the cross-node overhead.
 * - takeover: a persistent session (one subscription) reconnecting alternately on A and B; CONNECT to
 *   CONNACK for the take-over, beside a fresh client id's CONNECT on the same node.
 * Needs PostgreSQL (THINGSTEAD_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) and NATS
 * (THINGSTEAD_BENCH_NATS_URL, default nats://127.0.0.1:4222). Run: `npm run bench:cluster [-- --runs 3
 * --measure-ms 4000 --out bench/results/cluster.json]`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mqtt from 'mqtt';
import { runLoad } from './lib/load.js';
import { arg, machine, median, percentile, sleep } from './lib/common.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const PG_URL = process.env.THINGSTEAD_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.THINGSTEAD_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const runs = Number(arg('runs', '3'));
const measureMs = Number(arg('measure-ms', '4000'));
const publishers = Number(arg('publishers', '32'));
const subscribers = Number(arg('subscribers', '4'));
const out = arg('out', '');

interface Node {
  child: ChildProcess;
  port: number;
  /** CPU seconds (user + system) used so far by the node's processes (the primary and its workers). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const TICKS = 100; // USER_HZ on Linux

function processCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function schema(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bench_cl_${Date.now().toString(36)}`;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`CREATE SCHEMA ${name}`);
  await c.end();
  return {
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${name}`,
    async drop() {
      const d = new pg.Client({ connectionString: PG_URL });
      await d.connect();
      await d.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      await d.end();
    },
  };
}

/** `thingstead up` on its own data dir (shared when given), plain MQTT on a free port. */
async function startNode(opts: {
  cluster: string | null;
  dbUrl: string | null;
  workers: number;
  dataDir: string;
}): Promise<Node> {
  const main = join(repoRoot, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error('dist/cli/main.js missing: run `npm run build` first');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    THINGSTEAD_DATA_DIR: opts.dataDir,
    THINGSTEAD_MQTT_PORT: '0',
    THINGSTEAD_HTTP_PORT: '0',
    THINGSTEAD_MQTT_TLS_PORT: 'off',
    THINGSTEAD_ALLOW_ANONYMOUS: 'true',
    THINGSTEAD_LOG_LEVEL: 'warn',
    THINGSTEAD_METERING_ENABLED: 'false',
    // The take-over bench reconnects one client id hundreds of times (AWS's default is 1 CONNECT/s per id).
    THINGSTEAD_CONNECTS_PER_CLIENT_ID_PER_SECOND: '100000',
    THINGSTEAD_CONNECTS_PER_CLIENT_ID_BURST: '100000',
  };
  if (opts.dbUrl) env.THINGSTEAD_DATABASE_URL = opts.dbUrl;
  if (opts.cluster) {
    env.THINGSTEAD_NATS_URL = NATS_URL;
    env.THINGSTEAD_CLUSTER_NAME = opts.cluster;
  }
  const endpoints = join(opts.dataDir, 'endpoints.json');
  rmSync(endpoints, { force: true });
  const child = spawn(process.execPath, [main, 'up', '--workers', String(opts.workers)], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`thingstead exited: ${err.slice(-600)}`);
    if (err.includes('Thingstead is up') && (opts.workers === 1 || err.includes('Workers'))) break;
    if (Date.now() > deadline) throw new Error(`thingstead did not start: ${err.slice(-600)}`);
    await sleep(100);
  }
  const port = (JSON.parse(readFileSync(endpoints, 'utf8')) as { mqttPort: number }).mqttPort;
  return {
    child,
    port,
    cpuSeconds: () => [child.pid!, ...childrenOf(child.pid!)].reduce((sum, pid) => sum + processCpu(pid), 0),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

async function fanIn(port: number, id: string) {
  return runLoad({
    port,
    qos: 0,
    publishers,
    subscribers,
    topicBase: 'bench',
    sharedTopic: false,
    filter: '$share/ingest/bench/#',
    payloadBytes: 64,
    window: 64,
    gate: 20_000,
    rate: 0,
    latency: false,
    warmupMs: 1000,
    measureMs,
    id,
    fanout: 1,
  });
}

async function latency(pubPort: number, subPort: number, id: string) {
  const r = await runLoad({
    port: pubPort,
    subscriberPort: subPort,
    qos: 0,
    publishers: 4,
    subscribers: 1,
    topicBase: 'lat',
    sharedTopic: false,
    filter: 'lat/#',
    payloadBytes: 64,
    window: 16,
    gate: 1000,
    rate: 1000,
    latency: true,
    warmupMs: 1000,
    measureMs,
    id,
  });
  return r.latency!;
}

async function connectTime(port: number, clientId: string, session: boolean): Promise<number> {
  const t0 = performance.now();
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
    clean: !session,
    properties: session ? { sessionExpiryInterval: 300 } : {},
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  const ms = performance.now() - t0;
  if (session && !c.connected) throw new Error('not connected');
  await c.subscribeAsync(`t/${clientId}`, { qos: 1 });
  c.end(true);
  await sleep(5);
  return ms;
}

async function main() {
  const m = machine();
  console.log(`machine: ${m.cores} cores ${m.model}, node ${m.node}, load ${m.loadAtStart}`);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
  const db = await schema();
  const results: Record<string, unknown> = { machine: m };
  try {
    // ---- fan-in: single / workers1 / workers2, interleaved ----
    const rates: Record<string, number[]> = { single: [], workers1: [], workers2: [] };
    const perCpu: Record<string, number[]> = { single: [], workers1: [], workers2: [] };
    for (let run = 0; run < runs; run++) {
      for (const conf of ['single', 'workers1', 'workers2'] as const) {
        const node = await startNode({
          cluster: conf === 'single' ? null : `bench${run}${conf}`,
          dbUrl: conf === 'single' ? null : db.url,
          workers: conf === 'workers2' ? 2 : 1,
          dataDir: join(tmp, conf === 'single' ? 'single' : 'cluster'),
        });
        try {
          const cpu0 = node.cpuSeconds();
          const t0 = performance.now();
          const r = await fanIn(node.port, `${conf}-${run}`);
          const wall = (performance.now() - t0) / 1000;
          const cpu = node.cpuSeconds() - cpu0;
          rates[conf]!.push(r.deliveredPerSec);
          // Messages per broker CPU-second (warm-up included on both sides): what one core of broker carries.
          perCpu[conf]!.push((r.deliveredPerSec * wall) / cpu);
          console.log(
            `fan-in ${conf} run ${run + 1}: ${Math.round(r.deliveredPerSec)} msg/s delivered, broker CPU ${(cpu / wall).toFixed(2)} cores, ${Math.round((r.deliveredPerSec * wall) / cpu)} msg per broker CPU-second`,
          );
        } finally {
          await node.stop();
        }
      }
    }
    const med = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
    const medCpu = Object.fromEntries(Object.entries(perCpu).map(([k, v]) => [k, median(v)]));
    results.fanIn = { publishers, subscribers, runs: rates, median: med, perBrokerCpuSecond: medCpu };
    console.log(
      `msg per broker CPU-second: single ${Math.round(medCpu.single!)}, workers1 ${Math.round(medCpu.workers1!)}, workers2 ${Math.round(medCpu.workers2!)}`,
    );
    console.log(
      `fan-in medians: single ${Math.round(med.single!)}, workers1 ${Math.round(med.workers1!)}, workers2 ${Math.round(med.workers2!)} msg/s; workers2/workers1 ${(med.workers2! / med.workers1!).toFixed(2)}, workers1/single ${(med.workers1! / med.single!).toFixed(2)}`,
    );

    // ---- latency and takeover on two nodes ----
    const a = await startNode({
      cluster: 'benchlat',
      dbUrl: db.url,
      workers: 1,
      dataDir: join(tmp, 'cluster'),
    });
    // B: its own data directory (one `up` per directory) with A's keys and CA (the cluster shares them).
    const bDir = join(tmp, 'cluster-b');
    mkdirSync(bDir, { recursive: true });
    for (const f of ['master.key', 'ota-url.key', 'tls'])
      if (existsSync(join(tmp, 'cluster', f)))
        cpSync(join(tmp, 'cluster', f), join(bDir, f), { recursive: true });
    const b = await startNode({ cluster: 'benchlat', dbUrl: db.url, workers: 1, dataDir: bDir });
    try {
      const same: number[] = [];
      const cross: number[] = [];
      const p99s: { same: number[]; cross: number[] } = { same: [], cross: [] };
      for (let run = 0; run < runs; run++) {
        const l1 = await latency(a.port, a.port, `lat-same-${run}`);
        const l2 = await latency(a.port, b.port, `lat-cross-${run}`);
        same.push(l1.p50);
        cross.push(l2.p50);
        p99s.same.push(l1.p99);
        p99s.cross.push(l2.p99);
        console.log(
          `latency run ${run + 1}: same node p50 ${l1.p50.toFixed(3)} ms p99 ${l1.p99.toFixed(3)}; across nodes p50 ${l2.p50.toFixed(3)} ms p99 ${l2.p99.toFixed(3)}`,
        );
      }
      results.latency = {
        sameNodeP50: median(same),
        crossNodeP50: median(cross),
        overheadP50: median(cross) - median(same),
        sameNodeP99: median(p99s.same),
        crossNodeP99: median(p99s.cross),
      };
      console.log(`cross-node overhead p50 ${(median(cross) - median(same)).toFixed(3)} ms`);

      const takeover: number[] = [];
      const fresh: number[] = [];
      const iterations = Number(arg('takeovers', '200'));
      await connectTime(a.port, 'roamer', true);
      for (let i = 0; i < iterations; i++) {
        takeover.push(await connectTime(i % 2 === 0 ? b.port : a.port, 'roamer', true));
        fresh.push(await connectTime(i % 2 === 0 ? b.port : a.port, `fresh-${i}`, false));
      }
      results.takeover = {
        iterations,
        p50: percentile(takeover, 50),
        p99: percentile(takeover, 99),
        freshP50: percentile(fresh, 50),
        freshP99: percentile(fresh, 99),
      };
      console.log(
        `takeover across nodes: p50 ${percentile(takeover, 50).toFixed(2)} ms p99 ${percentile(takeover, 99).toFixed(2)} ms (fresh connect p50 ${percentile(fresh, 50).toFixed(2)} p99 ${percentile(fresh, 99).toFixed(2)})`,
      );
    } finally {
      await a.stop();
      await b.stop();
    }
  } finally {
    await db.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (out) writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
}

await main();
process.exit(0);
