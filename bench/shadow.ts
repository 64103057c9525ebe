/**
 * Shadow benchmark over MQTT (issue 10). Run: `npm run bench:shadow`, or `npx tsx bench/shadow.ts
 * [--stores sqlite,postgres] [--only throughput,latency] [--runs 3] [--things 1000] [--conns 50]
 * [--qos 0,1] [--seconds 5] [--warmup 2] [--rate 1000] [--profile]`. Needs `dist/` (`npm run build`).
 * Writes bench/results/shadow.json.
 *
 * Thingstead runs as its own process (`node dist/cli/main.js up`, plain MQTT on a free loopback port,
 * anonymous loopback clients, log level warn), on SQLite in a temporary data directory or on PostgreSQL
 * in a fresh schema of THINGSTEAD_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 * The load comes from MQTT.js clients in this process (MQTT 3.1.1, clean sessions, loopback TCP).
 *
 * (a) throughput: `--things` classic shadows spread over `--conns` device connections; each connection
 *     subscribes to its things' `/update/accepted` and `/update/rejected` and keeps one update in flight
 *     per thing (a reported value that changes each time; the next goes as soon as the accepted arrives:
 *     a closed loop, as fast as the platform accepts). Counted: `/update/accepted` received over
 *     `--seconds` after `--warmup`. The platform runs with shadow.maxUpdatesPerSecondPerThing=0 and
 *     shadow.maxInFlightPerConnection=0 (AWS's 20/s per thing and 10 per connection would cap the loop).
 * (b) latency: 10 app connections write desired (`{"seq": i}`) at a fixed offered rate (`--rate`, spread
 *     over all things round-robin, QoS 1); every thing's device connection subscribes to its
 *     `/update/delta`; the latency is from the app's publish call to the delta's arrival at the device,
 *     one monotonic clock (both in this process). The platform runs with AWS's default limits here.
 *
 * Each figure is the median of `--runs` runs. There is no peer that serves AWS shadows to run beside it;
 * the targets (issue 10) and Eclipse Ditto's published ~3,200 modifications/s (a multi-node cluster) are
 * the references the ratios are printed against. `--profile` runs the platform under `node --cpu-prof`
 * and prints where its CPU time went (self time by function and by file).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { openChangeChannel } from '../src/events/index.js';
import { createLogger } from '../src/observability/index.js';
import { createShadowService } from '../src/shadow/index.js';
import { createShadowStore } from '../src/shadow/store-sql.js';
import { arg, flag, machine as machineInfo, median, sleep } from './lib/common.js';
import { openDatabase } from '../src/store/index.js';

const STORES = arg('stores', 'sqlite,postgres').split(',') as Array<'sqlite' | 'postgres'>;
const ONLY = arg('only', 'throughput,latency,service').split(',');
const RUNS = Number(arg('runs', '3'));
const THINGS = Number(arg('things', '1000'));
const CONNS = Number(arg('conns', '50'));
const QOS = arg('qos', '0,1').split(',').map(Number) as Array<0 | 1>;
const SECONDS = Number(arg('seconds', '5'));
const WARMUP = Number(arg('warmup', '2'));
const RATE = Number(arg('rate', '1000'));
const APP_CONNS = 10;
const PROFILE = flag('profile');
const TOP = Number(arg('profile-top', '15'));
const PG_URL = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TARGETS = { sqlite: 10_000, postgres: 5_000, p99Ms: 10, ditto: 3_200 };

const root = fileURLToPath(new URL('../', import.meta.url));
/** `--cli <main.js>`: another build of the platform (e.g. a patched copy, to measure a change). */
const CLI = arg('cli', join(root, 'dist/cli/main.js'));
const log = (s: string) => process.stderr.write(s + '\n');
const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');

// ---- the platform under test -------------------------------------------------------------------------

interface Running {
  readonly mqttUrl: string;
  readonly pid: number;
  /** CPU seconds (user + system) the platform process has used so far (/proc/<pid>/stat). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

async function freshPg(): Promise<{ url: string; drop(): Promise<void> } | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
  } catch {
    log(`PostgreSQL unreachable at ${PG_URL}; skipped`);
    return null;
  }
  const schema = `bench_shadow_${Date.now().toString(36)}`;
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  return {
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`,
    async drop() {
      const d = new pg.Client({ connectionString: PG_URL });
      await d.connect();
      await d.query(`DROP SCHEMA ${schema} CASCADE`);
      await d.end();
    },
  };
}

const TICK = 100; // USER_HZ on Linux
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
}

async function startPlatform(
  store: 'sqlite' | 'postgres',
  shadow: Record<string, number>,
  profileDir?: string,
): Promise<Running | null> {
  const schema = store === 'postgres' ? await freshPg() : null;
  if (store === 'postgres' && !schema) return null;
  const dir = mkdtempSync(join(tmpdir(), 'bench-shadow-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ shadow }));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    THINGSTEAD_CONFIG: join(dir, 'config.json'),
    THINGSTEAD_DATA_DIR: join(dir, 'data'),
    THINGSTEAD_MQTT_PORT: '0',
    THINGSTEAD_HTTP_PORT: '0',
    THINGSTEAD_MQTT_TLS_PORT: 'off',
    THINGSTEAD_ALLOW_ANONYMOUS: 'true',
    THINGSTEAD_LOG_LEVEL: 'warn',
    ...(schema ? { THINGSTEAD_DATABASE_URL: schema.url } : {}),
  };
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, CLI, 'up'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const endpoints = join(dir, 'data', 'endpoints.json');
  const deadline = Date.now() + 60_000;
  while (!existsSync(endpoints) || !stderr.includes('Thingstead is up')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`thingstead did not start on ${store}:\n${stderr}`);
    }
    await sleep(50);
  }
  const { mqtt: mqttUrl } = JSON.parse(readFileSync(endpoints, 'utf8')) as { mqtt: string };
  return {
    mqttUrl,
    pid: child.pid!,
    cpuSeconds: () => cpuOf(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      await schema?.drop();
    },
  };
}

// ---- clients -----------------------------------------------------------------------------------------

const thingName = (c: number, i: number) => `sb-${c}-${i}`;
/** The things of connection `c`: thing k belongs to connection k % CONNS. */
const thingsOf = (c: number) =>
  Array.from({ length: Math.ceil((THINGS - c) / CONNS) }, (_, j) => thingName(c, j));

async function connectAll(url: string, ids: string[]): Promise<MqttClient[]> {
  return Promise.all(
    ids.map((clientId) =>
      mqtt.connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 0, keepalive: 0 }),
    ),
  );
}

/** Subscribe in SUBSCRIBEs of at most 8 filters (limits.maxFiltersPerSubscribe, AWS: 8). */
async function subscribeAll(c: MqttClient, filters: string[], qos: 0 | 1): Promise<void> {
  for (let i = 0; i < filters.length; i += 8) await c.subscribeAsync(filters.slice(i, i + 8), { qos });
}

const closeAll = (clients: MqttClient[]) =>
  Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));

/** Reported payloads, laid out once and cycled (a value that changes with every update). */
const REPORTED = Array.from({ length: 256 }, (_, i) =>
  Buffer.from(JSON.stringify({ state: { reported: { temperature: 20 + (i % 50) / 10, seq: i } } })),
);

interface ThroughputRun {
  updatesPerSecond: number;
  /** Platform CPU microseconds per accepted update: what one update costs, whatever else runs. */
  cpuUsPerUpdate: number;
  accepted: number;
  rejected: number;
  platformCpu: number;
  benchCpu: number;
}

async function throughputRun(p: Running, qos: 0 | 1, run: number): Promise<ThroughputRun> {
  const ids = Array.from({ length: CONNS }, (_, c) => `sb-dev-${c}-q${qos}-r${run}`);
  const clients = await connectAll(p.mqttUrl, ids);
  let counting = false;
  let running = true;
  let accepted = 0;
  let rejected = 0;
  let inFlight = 0;
  let seq = 0;
  await Promise.all(
    clients.map(async (client, c) => {
      const mine = thingsOf(c);
      await subscribeAll(
        client,
        mine.flatMap((t) => [
          `$aws/things/${t}/shadow/update/accepted`,
          `$aws/things/${t}/shadow/update/rejected`,
        ]),
        qos,
      );
      const send = (thing: string) => {
        inFlight++;
        client.publish(`$aws/things/${thing}/shadow/update`, REPORTED[seq++ & 255]!, { qos });
      };
      client.on('message', (topic) => {
        inFlight--;
        const levels = topic.split('/');
        if (levels[5] === 'accepted') {
          if (counting) accepted++;
        } else if (counting) rejected++;
        if (running) send(levels[2]!);
      });
      for (const t of mine) send(t);
    }),
  );
  await sleep(WARMUP * 1000);
  const cpu0 = p.cpuSeconds();
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  counting = true;
  await sleep(SECONDS * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const platformCpu = (p.cpuSeconds() - cpu0) / elapsed;
  const b = process.cpuUsage(bench0);
  running = false;
  const drain = Date.now() + 10_000;
  while (inFlight > 0 && Date.now() < drain) await sleep(20);
  await closeAll(clients);
  return {
    updatesPerSecond: accepted / elapsed,
    cpuUsPerUpdate: accepted ? (platformCpu * elapsed * 1e6) / accepted : NaN,
    accepted,
    rejected,
    platformCpu,
    benchCpu: (b.user + b.system) / 1e6 / elapsed,
  };
}

interface LatencyRun {
  sent: number;
  deltas: number;
  rejected: number;
  p50: number;
  p99: number;
  max: number;
  platformCpu: number;
  /** p99 of this (load generator) process's event-loop delay over the run, ms: how late it could read. */
  benchLoopP99: number;
}

/**
 * One latency run. `plain`: the control, the same rate, connections and payload shape as plain MQTT
 * through the same broker (the app publishes `sb/ping/<c>` QoS 1, device connection c subscribes to it), so
 * what the machine and the broker alone give at this rate stands beside what the shadow path adds.
 */
async function latencyRun(p: Running, run: number, plain: boolean): Promise<LatencyRun> {
  const tag = plain ? 'ping' : 'lat';
  const devices = await connectAll(
    p.mqttUrl,
    Array.from({ length: CONNS }, (_, c) => `sb-dev-${c}-${tag}-r${run}`),
  );
  const apps = await connectAll(
    p.mqttUrl,
    Array.from({ length: APP_CONNS }, (_, a) => `sb-app-${a}-${tag}-r${run}`),
  );
  const total = Math.round(RATE * (SECONDS + 1));
  const sentAt = new Float64Array(total);
  const latencies: number[] = [];
  let received = 0;
  let rejected = 0;
  const base = run * 10_000_000; // seq values never repeat across runs: every desired write changes the delta
  await Promise.all(
    devices.map(async (d, c) => {
      const filters = plain
        ? [`sb/ping/${c}`]
        : thingsOf(c).map((t) => `$aws/things/${t}/shadow/update/delta`);
      await subscribeAll(d, filters, 1);
      d.on('message', (_topic, payload) => {
        const at = performance.now();
        const i = (JSON.parse(payload.toString()) as { state: { seq: number } }).state.seq - base;
        received++;
        // The first second is the warm-up: its samples are not counted.
        if (i >= RATE && i < total) latencies.push(at - sentAt[i]!);
      });
    }),
  );
  // One subscriber counts every rejection (each app would receive them all).
  await apps[0]!.subscribeAsync('$aws/things/+/shadow/update/rejected', { qos: 0 });
  apps[0]!.on('message', () => rejected++);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = p.cpuSeconds();
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE) + 1);
    for (; i < due; i++) {
      const k = i % THINGS;
      sentAt[i] = performance.now();
      if (plain)
        apps[i % APP_CONNS]!.publish(`sb/ping/${k % CONNS}`, `{"state":{"seq":${base + i}}}`, { qos: 1 });
      else
        apps[i % APP_CONNS]!.publish(
          `$aws/things/${thingName(k % CONNS, Math.floor(k / CONNS))}/shadow/update`,
          `{"state":{"desired":{"seq":${base + i}}}}`,
          { qos: 1 },
        );
    }
    await sleep(1);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const platformCpu = (p.cpuSeconds() - cpu0) / elapsed;
  const deadline = Date.now() + 10_000;
  while (received + rejected < total && Date.now() < deadline) await sleep(20);
  loopDelay.disable();
  await closeAll([...devices, ...apps]);
  latencies.sort((a, b) => a - b);
  return {
    sent: total,
    deltas: received,
    rejected,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    platformCpu,
    benchLoopP99: loopDelay.percentile(99) / 1e6,
  };
}

// ---- the shadow service alone (where the time goes) ------------------------------------------------

interface ServiceRun {
  updatesPerSecond: number;
  cpuUsPerUpdate: number;
}

/**
 * (c) The shadow service in this process, without MQTT: the same updates (one in flight per thing) through
 * `createShadowService` on the real store and change channel, every answer serialized as the broker
 * publisher does (`Buffer.from(JSON.stringify(body))`) and dropped. Its CPU per update against the
 * platform's over MQTT splits the cost between the shadow context and the broker.
 */
async function serviceRun(store: 'sqlite' | 'postgres'): Promise<ServiceRun | null> {
  const schema = store === 'postgres' ? await freshPg() : null;
  if (store === 'postgres' && !schema) return null;
  const dir = mkdtempSync(join(tmpdir(), 'bench-shadow-svc-'));
  const db = await openDatabase({ dataDir: dir, databaseUrl: schema?.url ?? null });
  const events = await openChangeChannel(db);
  let bytes = 0;
  const service = createShadowService({
    store: await createShadowStore(db),
    publisher: { publish: (_topic, body) => void (bytes += Buffer.from(JSON.stringify(body)).length) },
    events,
    logger: createLogger('silent'),
    limits: { maxUpdatesPerSecondPerThing: 0, maxInFlightPerConnection: 0 },
  });
  const things = Array.from({ length: THINGS }, (_, k) => thingName(k % CONNS, Math.floor(k / CONNS)));
  let seq = 0;
  let counting = false;
  let running = true;
  let done = 0;
  const loop = async (thing: string) => {
    while (running) {
      const i = seq++;
      await service.update(thing, '', { reported: { temperature: 20 + (i % 50) / 10, seq: i & 255 } });
      if (counting) done++;
    }
  };
  const loops = things.map(loop);
  await sleep(WARMUP * 1000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  counting = true;
  await sleep(SECONDS * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  running = false;
  await Promise.all(loops);
  await service.close();
  await events.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  await schema?.drop();
  if (bytes === 0) throw new Error('the service published nothing');
  return { updatesPerSecond: done / elapsed, cpuUsPerUpdate: (cpu.user + cpu.system) / done };
}

// ---- profile summary ----------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Self time by function and by file from the .cpuprofile files in `dir`. */
function summarizeProfile(dir: string): {
  byFunction: Array<[string, number]>;
  byFile: Array<[string, number]>;
} {
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      nodes: ProfileNode[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    prof.samples.forEach((id, k) => {
      const n = byId.get(id)!;
      const dt = prof.timeDeltas[k] ?? 0;
      total += dt;
      const url = n.callFrame.url.replace(/^file:\/\//, '').replace(root, '');
      const where = url ? `${basename(url)}:${n.callFrame.lineNumber + 1}` : '(native)';
      const name = `${n.callFrame.functionName || '(anonymous)'} ${where}`;
      fn.set(name, (fn.get(name) ?? 0) + dt);
      const group = url.includes('node_modules/')
        ? url.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, 'npm:$1')
        : url || n.callFrame.functionName;
      file.set(group, (file.get(group) ?? 0) + dt);
    });
  }
  const top = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([k, v]): [string, number] => [k, Number(((100 * v) / total).toFixed(1))]);
  return { byFunction: top(fn), byFile: top(file) };
}

// ---- main ---------------------------------------------------------------------------------------------

if (!existsSync(CLI)) {
  log(`${CLI} is missing: run \`npm run build\` first (npm run bench:shadow does).`);
  process.exit(2);
}
const machine = machineInfo();
log(
  `shadow bench: ${machine.model}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadAtStart}; ` +
    `${THINGS} things over ${CONNS} MQTT.js connections, ${RUNS} runs, ${WARMUP} s warm-up + ${SECONDS} s window`,
);
const results: Record<string, any> = {
  machine,
  settings: { things: THINGS, conns: CONNS, runs: RUNS, seconds: SECONDS, warmup: WARMUP, rate: RATE },
};
const profiles: Record<string, ReturnType<typeof summarizeProfile>> = {};

for (const store of STORES) {
  if (ONLY.includes('throughput')) {
    const profDir = PROFILE ? mkdtempSync(join(tmpdir(), 'bench-shadow-prof-')) : undefined;
    const p = await startPlatform(
      store,
      { maxUpdatesPerSecondPerThing: 0, maxInFlightPerConnection: 0 },
      profDir,
    );
    if (p) {
      for (const qos of QOS) {
        const runs: ThroughputRun[] = [];
        for (let r = 0; r < RUNS; r++) {
          const one = await throughputRun(p, qos, r);
          runs.push(one);
          log(
            `  ${store} QoS ${qos} run ${r + 1}: ${fmt(one.updatesPerSecond)} updates/s accepted (${one.cpuUsPerUpdate.toFixed(0)} µs platform CPU each), ${one.rejected} rejected, platform CPU ${(one.platformCpu * 100).toFixed(0)}%, bench CPU ${(one.benchCpu * 100).toFixed(0)}%`,
          );
        }
        results[`throughput_${store}_qos${qos}`] = {
          updatesPerSecond: Math.round(median(runs.map((x) => x.updatesPerSecond))),
          rejected: runs.reduce((n, x) => n + x.rejected, 0),
          cpuUsPerUpdate: Math.round(median(runs.map((x) => x.cpuUsPerUpdate))),
          platformCpu: Number(median(runs.map((x) => x.platformCpu)).toFixed(2)),
          benchCpu: Number(median(runs.map((x) => x.benchCpu)).toFixed(2)),
          runs: runs.map((x) => Math.round(x.updatesPerSecond)),
          limits: 'shadow.maxUpdatesPerSecondPerThing=0, shadow.maxInFlightPerConnection=0',
        };
      }
      await p.stop();
      if (profDir) {
        profiles[`throughput_${store}`] = summarizeProfile(profDir);
        rmSync(profDir, { recursive: true, force: true });
      }
    }
  }
  if (ONLY.includes('latency')) {
    const profDir = PROFILE ? mkdtempSync(join(tmpdir(), 'bench-shadow-prof-')) : undefined;
    const p = await startPlatform(store, {}, profDir);
    if (p) {
      const runs: LatencyRun[] = [];
      const control: LatencyRun[] = [];
      const line = (what: string, one: LatencyRun, r: number) =>
        log(
          `  ${store} ${what} run ${r + 1}: ${one.deltas}/${one.sent} received, ${one.rejected} rejected; p50 ${one.p50.toFixed(2)} ms, p99 ${one.p99.toFixed(2)} ms, max ${one.max.toFixed(1)} ms; platform CPU ${(one.platformCpu * 100).toFixed(0)}%, bench event-loop delay p99 ${one.benchLoopP99.toFixed(1)} ms`,
        );
      for (let r = 0; r < RUNS; r++) {
        const one = await latencyRun(p, r, false);
        runs.push(one);
        line('update->delta', one, r);
        const ping = await latencyRun(p, r, true);
        control.push(ping);
        line('plain MQTT control', ping, r);
      }
      const summary = (xs: LatencyRun[]) => ({
        p50Ms: Number(median(xs.map((x) => x.p50)).toFixed(2)),
        p99Ms: Number(median(xs.map((x) => x.p99)).toFixed(2)),
        maxMs: Number(median(xs.map((x) => x.max)).toFixed(1)),
        received: xs.map((x) => `${x.deltas}/${x.sent}`),
        rejected: xs.reduce((n, x) => n + x.rejected, 0),
        platformCpu: Number(median(xs.map((x) => x.platformCpu)).toFixed(2)),
        benchLoopP99Ms: Number(median(xs.map((x) => x.benchLoopP99)).toFixed(1)),
      });
      results[`latency_${store}`] = {
        rate: RATE,
        ...summary(runs),
        control: summary(control),
        limits: 'defaults (AWS): 20 updates/s per thing, 10 in flight per connection',
      };
      await p.stop();
      if (profDir) {
        profiles[`latency_${store}`] = summarizeProfile(profDir);
        rmSync(profDir, { recursive: true, force: true });
      }
    }
  }
  if (ONLY.includes('service')) {
    const runs: ServiceRun[] = [];
    for (let r = 0; r < RUNS; r++) {
      const one = await serviceRun(store);
      if (!one) break;
      runs.push(one);
      log(
        `  ${store} service alone run ${r + 1}: ${fmt(one.updatesPerSecond)} updates/s, ${one.cpuUsPerUpdate.toFixed(0)} µs CPU each`,
      );
    }
    if (runs.length)
      results[`service_${store}`] = {
        updatesPerSecond: Math.round(median(runs.map((x) => x.updatesPerSecond))),
        cpuUsPerUpdate: Math.round(median(runs.map((x) => x.cpuUsPerUpdate))),
      };
  }
}

// ---- report -------------------------------------------------------------------------------------------

const out: string[] = [];
out.push(
  `\nShadows over MQTT. Machine: ${machine.model}, ${machine.cores} cores, Node ${machine.node}; load ${machine.loadAtStart} at the start. Medians of ${RUNS} runs.`,
);
out.push(
  `(a) sustained updates/s (/update/accepted received; ${THINGS} things, ${CONNS} connections, one update in flight per thing; shadow.maxUpdatesPerSecondPerThing=0, maxInFlightPerConnection=0)`,
);
out.push(
  `    ${'store'.padEnd(9)}${'QoS'.padEnd(5)}${'updates/s'.padStart(10)}  ${'runs'.padEnd(22)}${'platform CPU'.padStart(13)}${'bench CPU'.padStart(11)}  vs target         vs Ditto 3,200/s`,
);
for (const store of STORES)
  for (const qos of QOS) {
    const r = results[`throughput_${store}_qos${qos}`];
    if (!r) continue;
    const target = TARGETS[store];
    out.push(
      `    ${store.padEnd(9)}${String(qos).padEnd(5)}${fmt(r.updatesPerSecond).padStart(10)}  ${r.runs.map(fmt).join(' ').padEnd(22)}${`${Math.round(r.platformCpu * 100)}%`.padStart(13)}${`${Math.round(r.benchCpu * 100)}%`.padStart(11)}  ${`${(r.updatesPerSecond / target).toFixed(2)}x of ${fmt(target)}`.padEnd(18)}${(r.updatesPerSecond / TARGETS.ditto).toFixed(2)}x`,
    );
  }
out.push(
  `(b) update -> delta at ${fmt(RATE)} updates/s offered (desired from ${APP_CONNS} app connections, delta at ${CONNS} device connections; AWS default limits)`,
);
for (const store of STORES) {
  const r = results[`latency_${store}`];
  if (!r) continue;
  out.push(
    `    ${store.padEnd(9)} update->delta  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  max ${r.maxMs} ms  (target p99 < ${TARGETS.p99Ms} ms: ${r.p99Ms < TARGETS.p99Ms ? 'met' : 'MISSED'}, ${(r.p99Ms / TARGETS.p99Ms).toFixed(2)}x of it)  received ${r.received.join(' ')}  rejected ${r.rejected}  platform CPU ${Math.round(r.platformCpu * 100)}%`,
  );
  const c = r.control;
  out.push(
    `    ${''.padEnd(9)} plain MQTT     p50 ${c.p50Ms} ms  p99 ${c.p99Ms} ms  max ${c.maxMs} ms  (same rate and connections, no shadow: shadow/plain p99 ${(r.p99Ms / c.p99Ms).toFixed(2)}x)  bench event-loop delay p99 ${r.benchLoopP99Ms} ms`,
  );
}
out.push(
  '(c) CPU per update: the platform over MQTT (a) vs the shadow service alone in-process (c), and the one-core ceiling each implies',
);
for (const store of STORES) {
  const svc = results[`service_${store}`];
  const mq = results[`throughput_${store}_qos${QOS[QOS.length - 1]}`];
  if (!svc && !mq) continue;
  const us = (r: any) => (r ? `${r.cpuUsPerUpdate} µs (ceiling ${fmt(1e6 / r.cpuUsPerUpdate)}/s)` : '-');
  out.push(
    `    ${store.padEnd(9)} over MQTT ${us(mq)}   service alone ${us(svc)}${svc ? `, measured ${fmt(svc.updatesPerSecond)}/s` : ''}${svc && mq ? `   broker + MQTT share ${Math.round((100 * (mq.cpuUsPerUpdate - svc.cpuUsPerUpdate)) / mq.cpuUsPerUpdate)}%` : ''}`,
  );
}
for (const [name, prof] of Object.entries(profiles)) {
  out.push(`profile ${name} (platform self time, % of samples):`);
  out.push(`    by file: ${prof.byFile.map(([k, v]) => `${k} ${v}%`).join(', ')}`);
  for (const [k, v] of prof.byFunction) out.push(`    ${String(v).padStart(5)}%  ${k}`);
}
console.log(out.join('\n'));
if (Object.keys(profiles).length) results.profiles = profiles;
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('shadow.json', dir), JSON.stringify(results, null, 2) + '\n');
log('wrote bench/results/shadow.json');
