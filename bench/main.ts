/**
 * `npm run bench`: loopback load test of Thingstead against Mosquitto and Aedes in one run.
 *
 * Every broker runs in its own process on a free port; the load generator is this process's worker
 * threads (pre-encoded packets, a minimal frame scanner), and the same generator is also run against a
 * trivial Node forwarder of the same bytes ("ceiling") to show it is not the bottleneck. Runs of each
 * scenario are interleaved across brokers so background noise hits all of them alike; each figure is
 * the median of the runs.
 *
 * Options: --quick  --only=qos0,qos1,fanout,latency,idle,storm  --brokers=thingstead,mosquitto,aedes,ceiling
 *          --runs=N  --idle-conns=N  --storm-clients=N  --storm-rate=msg/s  --out=bench/results
 * (`storm`, the connection storm, runs by default but not with --quick; ask for it with --only=storm.)
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKERS, MOSQUITTO_BIN, startBroker, type BrokerName, type RunningBroker } from './lib/brokers.js';
import { runLoad, startLoad, type LoadSpec } from './lib/load.js';
import { markdownTable, median, svgChart, type MetricResult } from './lib/report.js';

const SCENARIOS = ['qos0', 'qos1', 'fanout', 'latency', 'idle', 'storm'] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: string[]) {
  const get = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const list = <T extends string>(name: string, all: readonly T[], dflt: readonly T[]): T[] => {
    const v = get(name);
    if (!v) return [...dflt];
    const items = v.split(',').map((s) => s.trim()) as T[];
    const bad = items.filter((i) => !all.includes(i));
    if (bad.length) throw new Error(`--${name}: unknown ${bad.join(', ')} (choose from ${all.join(', ')})`);
    return items;
  };
  const quick = argv.includes('--quick');
  return {
    quick,
    only: list<Scenario>('only', SCENARIOS, quick ? SCENARIOS.filter((s) => s !== 'storm') : SCENARIOS),
    brokers: list<BrokerName>('brokers', BROKERS, BROKERS),
    runs: Number(get('runs') ?? (quick ? 1 : 3)),
    idleConns: Number(get('idle-conns') ?? (quick ? 1000 : 15_000)),
    stormClients: Number(get('storm-clients') ?? 10_000),
    /** Offered msg/s of the storm's background publishers; 0 = as fast as the gate allows. */
    stormRate: Number(get('storm-rate') ?? 0),
    warmupMs: quick ? 300 : 1000,
    measureMs: quick ? 700 : 3000,
    out: get('out') ?? fileURLToPath(new URL('./results', import.meta.url)),
  };
}

const opts = parseArgs(process.argv.slice(2));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
/** Progress on stderr, prefixed with seconds since start. */
const log = (s: string) =>
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

function machine() {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')[0]!
        .trim();
    } catch (err) {
      // mosquitto -h exits non-zero but prints its version first.
      return String((err as { stdout?: string }).stdout ?? '')
        .split('\n')[0]!
        .trim();
    }
  };
  const pkg = (name: string) =>
    (
      JSON.parse(
        readFileSync(fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url)), 'utf8'),
      ) as { version: string }
    ).version;
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    mosquitto: version(MOSQUITTO_BIN, ['-h']),
    aedes: pkg('aedes'),
    loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    date: new Date().toISOString(),
  };
}

let seq = 0;
const base = (port: number): Omit<LoadSpec, 'qos' | 'publishers' | 'subscribers' | 'rate' | 'latency'> => ({
  port,
  topicBase: 'bench/in',
  sharedTopic: false,
  filter: 'bench/#',
  payloadBytes: 32,
  window: 100,
  gate: 20_000,
  warmupMs: opts.warmupMs,
  measureMs: opts.measureMs,
  id: `b${process.pid}-${++seq}`,
});

/**
 * Fan-in: 20 publishers on their own topics -> 1 subscriber on `bench/#` at the same QoS. QoS 1
 * publishers keep up to 100 unacknowledged PUBLISHes each; at most 1000 messages are in transit to the
 * subscriber, within every broker's default per-session queue (Thingstead: limits.maxQueuedPerSession
 * 1000 beyond its 100-message in-flight window), so no broker drops and the figure is a sustained rate.
 */
const fanIn = (port: number, qos: 0 | 1) =>
  runLoad({
    ...base(port),
    qos,
    publishers: 20,
    subscribers: 1,
    rate: 0,
    latency: false,
    gate: qos === 1 ? 1000 : 20_000,
  });

/** Fan-out: 1 publisher -> 50 subscribers of the same topic (QoS 0). */
const fanOut = (port: number) =>
  runLoad({
    ...base(port),
    qos: 0,
    publishers: 1,
    subscribers: 50,
    topicBase: 'bench/out',
    sharedTopic: true,
    filter: 'bench/out',
    gate: 2000,
    rate: 0,
    latency: false,
  });

/** Latency at a fixed offered rate: 10 publishers -> 1 subscriber, QoS 0, timestamps in payloads. */
const latencyAt = (port: number, rate: number) =>
  runLoad({ ...base(port), qos: 0, publishers: 10, subscribers: 1, rate, latency: true, gate: 1e9 });

/** Broker RSS growth per idle connection, opened by several holder processes (<= 5000 sockets each). */
async function idlePerConnKb(b: RunningBroker, conns: number): Promise<{ kb: number; connected: number }> {
  const before = b.rssKb();
  const perProc = 5000;
  const holders = Array.from({ length: Math.ceil(conns / perProc) }, (_, i) =>
    fork(
      fileURLToPath(new URL('./lib/idle-holder.ts', import.meta.url)),
      [String(b.port), String(Math.min(perProc, conns - i * perProc)), `idle${seq}-${i}`],
      { execArgv: process.execArgv },
    ),
  );
  seq++;
  const state = holders.map(() => ({ connected: 0, failed: 0, done: false }));
  holders.forEach((h, i) => h.on('message', (m: (typeof state)[number]) => (state[i] = m)));
  try {
    const deadline = Date.now() + 120_000;
    while (!state.every((s) => s.done) && Date.now() < deadline) await sleep(200);
    await sleep(2000); // let the broker settle (allocations after CONNACK, GC)
    const connected = state.reduce((n, s) => n + s.connected, 0);
    const failed = state.reduce((n, s) => n + s.failed, 0);
    if (failed) log(`    ${b.name}: ${failed} idle connections failed`);
    const after = b.rssKb();
    return { kb: connected ? (after - before) / connected : NaN, connected };
  } finally {
    for (const h of holders) h.send('exit');
    await Promise.all(
      holders.map((h) => new Promise((r) => (h.exitCode !== null ? r(0) : h.once('exit', r)))),
    );
  }
}

export interface StormResult {
  /** Publish throughput (messages delivered to the fan-in subscriber per second) in each phase. */
  readonly before: number;
  readonly during: number;
  readonly after: number;
  /** Clients connected and subscribed per second during the storm. */
  readonly connectsPerSec: number;
  readonly stormMs: number;
  readonly subscribed: number;
  readonly failed: number;
}

/**
 * Connection storm: QoS 0 fan-in (10 publishers -> 1 subscriber on `bench/#`) runs throughout while
 * `clients` new clients connect and each subscribes to a distinct filter (`storm/<id>/#`), opened by
 * helper processes of at most 5,000 sockets (250 handshakes in flight each). Throughput is measured over
 * a window before the storm, over the storm itself (first CONNECT to last SUBACK), and over a window
 * after it, with the storm's clients still connected.
 */
async function storm(port: number, clients: number): Promise<StormResult> {
  const windowMs = opts.quick ? 1000 : 2000;
  const load = await startLoad({
    ...base(port),
    qos: 0,
    publishers: 10,
    subscribers: 1,
    rate: opts.stormRate,
    latency: false,
  });
  const perProc = 5000;
  const holders: ChildProcess[] = [];
  try {
    await sleep(opts.warmupMs);
    const rate = async (ms: number) => {
      const c0 = load.counts().delivered;
      const t = performance.now();
      await sleep(ms);
      load.check();
      return (load.counts().delivered - c0) / ((performance.now() - t) / 1000);
    };
    const before = await rate(windowMs);
    const id = `storm${process.pid}-${seq++}`;
    const state = Array.from({ length: Math.ceil(clients / perProc) }, () => ({
      subscribed: 0,
      failed: 0,
      done: false,
    }));
    const c0 = load.counts().delivered;
    const t0 = performance.now();
    state.forEach((_, i) => {
      const h = fork(
        fileURLToPath(new URL('./lib/storm-holder.ts', import.meta.url)),
        [String(port), String(Math.min(perProc, clients - i * perProc)), `${id}-${i}`, '250'],
        { execArgv: process.execArgv },
      );
      h.on('message', (m: (typeof state)[number]) => (state[i] = m));
      holders.push(h);
    });
    const deadline = Date.now() + 180_000;
    while (!state.every((s) => s.done) && Date.now() < deadline) await sleep(20);
    const stormMs = performance.now() - t0;
    const during = (load.counts().delivered - c0) / (stormMs / 1000);
    load.check();
    const subscribed = state.reduce((n, s) => n + s.subscribed, 0);
    const failed = state.reduce((n, s) => n + s.failed, 0);
    const after = await rate(windowMs);
    return {
      before,
      during,
      after,
      connectsPerSec: subscribed / (stormMs / 1000),
      stormMs,
      subscribed,
      failed,
    };
  } finally {
    for (const h of holders) h.send('exit');
    await Promise.all(
      holders.map((h) => new Promise((r) => (h.exitCode !== null ? r(0) : h.once('exit', r)))),
    );
    await load.stop();
  }
}

async function main() {
  const info = machine();
  log(
    `Thingstead bench${opts.quick ? ' (--quick)' : ''}: ${info.cpu}, ${info.cores} cores, ${info.memoryGb} GB, Node ${info.node}, ${info.mosquitto}, aedes ${info.aedes}`,
  );
  log(`scenarios: ${opts.only.join(', ')}; brokers: ${opts.brokers.join(', ')}; ${opts.runs} run(s) each`);
  const tmp = mkdtempSync(join(tmpdir(), 'thingstead-bench-'));
  const running: RunningBroker[] = [];
  // Interrupted: stop the broker processes rather than leave them orphaned. Synchronously: another
  // SIGINT listener (the TypeScript loader's) may exit the process right after this one returns.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: stopping brokers`);
      for (const b of running) b.kill();
      rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  }
  const errors: Partial<Record<BrokerName, string>> = {};
  const metrics: MetricResult[] = [];
  const metric = (m: Omit<MetricResult, 'values'>): MetricResult => {
    const r: MetricResult = { ...m, values: {} };
    metrics.push(r);
    return r;
  };
  const record = (m: MetricResult, b: BrokerName, v: number, note?: string, detail?: unknown) => {
    const slot = (m.values[b] ??= { runs: [], median: null });
    slot.runs.push(v);
    if (detail !== undefined) (slot.details ??= []).push(detail);
    slot.median = median(slot.runs);
    if (note) slot.note = note;
  };

  try {
    for (const name of opts.brokers) {
      try {
        running.push(await startBroker(name, tmp));
        log(`  started ${name} on port ${running.at(-1)!.port}`);
      } catch (err) {
        errors[name] = (err as Error).message;
        log(`  ${name} did not start: ${(err as Error).message}`);
      }
    }
    const live = () => running.filter((b) => b.alive());
    /** Run `fn` for every live broker `opts.runs` times, interleaved, recording failures. */
    const each = async (
      what: string,
      fn: (b: RunningBroker, run: number) => Promise<void>,
      brokers = live(),
    ) => {
      for (let run = 0; run < opts.runs; run++) {
        for (const b of brokers) {
          if (!b.alive()) continue;
          try {
            await fn(b, run);
          } catch (err) {
            const msg = `${what}: ${(err as Error).message}`;
            errors[b.name] = msg;
            log(`    ${b.name} ${msg}`);
          }
          await sleep(300);
        }
      }
    };

    if (opts.only.includes('idle')) {
      const m = metric({
        key: 'idle_kb',
        label: `RSS per idle connection @ ${opts.idleConns / 1000}k`,
        unit: 'KB',
        better: 'lower',
        target: '<= 6 KB',
      });
      // Each run on a fresh broker process of its own (allocator and heap not grown by earlier runs),
      // one broker at a time: each run holds thousands of sockets. Interleaved like the other scenarios.
      const names = live()
        .map((x) => x.name)
        .filter((x) => x !== 'ceiling');
      for (let run = 0; run < opts.runs; run++) {
        for (const name of names) {
          let b: RunningBroker | null = null;
          try {
            b = await startBroker(name, join(tmp, `idle-${run}`));
            const r = await idlePerConnKb(b, opts.idleConns);
            record(m, name, r.kb, r.connected < opts.idleConns ? `${r.connected} connected` : undefined, r);
            log(`    idle ${name}: ${r.kb.toFixed(2)} KB per connection (${r.connected} connections)`);
          } catch (err) {
            errors[name] = `idle: ${(err as Error).message}`;
            log(`    idle ${name}: ${(err as Error).message}`);
          } finally {
            await b?.stop();
          }
          await sleep(500);
        }
      }
    }
    const peak: Partial<Record<BrokerName, number>> = {};
    if (opts.only.includes('qos0')) {
      const m = metric({
        key: 'qos0_fanin',
        label: 'QoS 0 fan-in 20->1',
        unit: 'msg/s',
        better: 'higher',
        target: '>= 250k',
      });
      await each('qos0', async (b) => {
        const r = await fanIn(b.port, 0);
        record(m, b.name, r.deliveredPerSec, undefined, r);
        log(
          `    qos0 ${b.name}: ${Math.round(r.deliveredPerSec)} msg/s delivered (${Math.round(r.sentPerSec)} sent)${r.stalls ? `, ${r.stalls} stalls (undelivered messages written off)` : ''}`,
        );
      });
      for (const [b, v] of Object.entries(m.values)) if (v.median) peak[b as BrokerName] = v.median;
    }
    if (opts.only.includes('qos1')) {
      const m = metric({
        key: 'qos1_fanin',
        label: 'QoS 1 fan-in 20->1',
        unit: 'msg/s',
        better: 'higher',
        target: '>= 150k',
      });
      await each('qos1', async (b) => {
        const r = await fanIn(b.port, 1);
        record(m, b.name, r.deliveredPerSec, undefined, r);
        log(
          `    qos1 ${b.name}: ${Math.round(r.deliveredPerSec)} msg/s delivered (${Math.round(r.sentPerSec)} sent)`,
        );
      });
    }
    if (opts.only.includes('fanout')) {
      const m = metric({
        key: 'fanout',
        label: 'QoS 0 fan-out 1->50',
        unit: 'deliveries/s',
        better: 'higher',
        target: '>= 400k',
      });
      await each('fanout', async (b) => {
        const r = await fanOut(b.port);
        record(m, b.name, r.deliveredPerSec, undefined, r);
        log(
          `    fanout ${b.name}: ${Math.round(r.deliveredPerSec)} deliveries/s (${Math.round(r.sentPerSec)} published/s)`,
        );
      });
    }
    if (opts.only.includes('latency')) {
      const p50 = metric({
        key: 'latency_20k_p50',
        label: 'p50 latency @ 20k msg/s',
        unit: 'ms',
        better: 'lower',
      });
      const p99 = metric({
        key: 'latency_20k_p99',
        label: 'p99 latency @ 20k msg/s',
        unit: 'ms',
        better: 'lower',
        target: '< 2 ms',
      });
      const h50 = metric({
        key: 'latency_half_p50',
        label: 'p50 latency @ half peak',
        unit: 'ms',
        better: 'lower',
      });
      const h99 = metric({
        key: 'latency_half_p99',
        label: 'p99 latency @ half peak',
        unit: 'ms',
        better: 'lower',
        target: '< 10 ms',
      });
      const rateM = metric({
        key: 'latency_half_rate',
        label: 'half-peak offered rate',
        unit: 'msg/s',
        better: 'higher',
      });
      for (const b of live()) {
        if (peak[b.name] || b.name === 'ceiling') continue;
        const r = await fanIn(b.port, 0).catch(() => null); // peak for "half of the measured peak"
        if (r) peak[b.name] = r.deliveredPerSec;
      }
      await each('latency', async (b) => {
        // The ceiling runs at Thingstead's half-peak rate (its own would be far beyond any broker): that
        // row is the load generator's own latency at the highest rate offered to a broker.
        const half = b.name === 'ceiling' ? (peak.thingstead ?? peak.mosquitto) : peak[b.name];
        const rates: Array<[number, MetricResult, MetricResult]> = [[20_000, p50, p99]];
        if (half) rates.push([Math.round(half / 2), h50, h99]);
        for (const [rate, m50, m99] of rates) {
          const r = await latencyAt(b.port, rate);
          const achieved = r.deliveredPerSec / rate;
          const note = achieved < 0.95 ? `only ${Math.round(achieved * 100)}% delivered` : undefined;
          if (r.latency) {
            record(m50, b.name, r.latency.p50, note, { rate, ...r });
            record(m99, b.name, r.latency.p99, note);
          }
          if (m50 === h50) record(rateM, b.name, rate);
          log(
            `    latency ${b.name} @ ${rate}/s: p50 ${r.latency?.p50.toFixed(2)} ms, p99 ${r.latency?.p99.toFixed(2)} ms, p99.9 ${r.latency?.p999.toFixed(2)} ms (${Math.round(r.deliveredPerSec)} delivered/s)`,
          );
        }
      });
    }
    if (opts.only.includes('storm')) {
      const n = opts.stormClients;
      const phases = (['before', 'during', 'after'] as const).map((phase) =>
        metric({
          key: `storm_${phase}`,
          label: `QoS 0 fan-in 10->1 ${phase} a ${n / 1000}k-client storm`,
          unit: 'msg/s',
          better: 'higher',
        }),
      );
      const rateM = metric({
        key: 'storm_connects',
        label: 'storm: clients connected and subscribed',
        unit: 'clients/s',
        better: 'higher',
      });
      // Last: the storm leaves thousands of sockets closing behind it.
      await each(
        'storm',
        async (b) => {
          const r = await storm(b.port, n);
          const note = r.failed ? `${r.failed} failed` : undefined;
          record(phases[0]!, b.name, r.before, undefined, r);
          record(phases[1]!, b.name, r.during, note);
          record(phases[2]!, b.name, r.after);
          record(rateM, b.name, r.connectsPerSec, note);
          log(
            `    storm ${b.name}: ${Math.round(r.before)} msg/s before, ${Math.round(r.during)} during (${r.subscribed} clients in ${Math.round(r.stormMs)} ms, ${Math.round(r.connectsPerSec)}/s${r.failed ? `, ${r.failed} failed` : ''}), ${Math.round(r.after)} after`,
          );
          await sleep(2000);
        },
        live().filter((x) => x.name !== 'ceiling'),
      );
    }
    for (const b of running)
      if (!b.alive()) errors[b.name] ??= `exited during the run: ${b.stderrTail().slice(-500)}`;
  } finally {
    await Promise.all(running.map((b) => b.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }

  const table = markdownTable(metrics);
  const subtitle = `${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.date.slice(0, 16)}Z${opts.quick ? ' (--quick)' : ''}`;
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(
    join(opts.out, 'latest.json'),
    JSON.stringify({ machine: info, options: opts, metrics, errors }, null, 2) + '\n',
  );
  writeFileSync(join(opts.out, 'latest.svg'), svgChart(metrics, subtitle));
  console.log(`\nMachine: ${subtitle}; ${info.mosquitto}; aedes ${info.aedes}`);
  console.log(`Medians of ${opts.runs} run(s); ratios are thingstead / peer.\n`);
  console.log(table);
  for (const [b, e] of Object.entries(errors)) console.log(`\n${b}: ${e}`);
  console.log(`\nWrote ${join(opts.out, 'latest.json')} and latest.svg`);
}

await main();
