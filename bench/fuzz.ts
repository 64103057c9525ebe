/**
 * A long MQTT 5 property-block fuzz run (the generators of test/conformance/property-fuzz.ts) against a
 * broker in its own process (bench/fuzz-server.ts), with a live MQTT 5 subscriber and a persistent
 * session on the fuzzed topics. Every 10 s it prints connections and packets sent, the broker's RSS,
 * fuzzed messages delivered, and the sentinel round trip; every `--restart-every` minutes (and at the
 * end) the broker is restarted on the same data directory, and the persistent session must get the
 * message queued for it across the restart. Exits non-zero if the broker dies or a sentinel is lost.
 *
 *   npx tsx bench/fuzz.ts --minutes 3 [--seed 42] [--lanes 32] [--restart-every 1]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { playSession, propertySession } from '../test/conformance/property-fuzz.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 3);
const seed = arg('seed', Date.now() % 2 ** 31);
const lanes = arg('lanes', 32);
const restartEvery = arg('restart-every', 1) * 60_000;
const log = (s: string) => process.stdout.write(s + '\n');

const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-fuzz-bench-'));
let child: ChildProcess;
let port = 0;
let brokerDied = false;
let restarting = false;

async function startBroker(): Promise<void> {
  child = fork(fileURLToPath(new URL('./fuzz-server.ts', import.meta.url)), [dataDir], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`fuzz-server exited with ${code}`)));
  });
  child.once('exit', (code, signal) => {
    if (!restarting) {
      brokerDied = true;
      log(`BROKER DIED: exit ${code} ${signal ?? ''}`);
    }
  });
}

/** Graceful stop (the caller sets `restarting`, so the exit and client closes are not counted). */
async function stopBroker(): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function rssMb(): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const client = (opts: IClientOptions) =>
  mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });

const keeperOpts = {
  clientId: `bench-keeper-${seed}`,
  clean: false,
  properties: { sessionExpiryInterval: 3600 },
};

let live!: MqttClient;
let sender!: MqttClient;
let liveDisconnects = 0;
let delivered = 0;
const seen = new Set<string>();

async function attachClients(): Promise<void> {
  live = await client({ clientId: `bench-live-${seed}` });
  live.on('message', (_t, payload) => {
    delivered++;
    seen.add(payload.toString());
  });
  live.on('close', () => {
    if (!restarting) liveDisconnects++;
  });
  await live.subscribeAsync('pfuzz/#', { qos: 1 });
  sender = await client({ clientId: `bench-sender-${seed}` });
}

/** The persistent session takes what was queued for it (across a restart too) and goes offline again. */
async function visitKeeper(expect: string): Promise<boolean> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...keeperOpts,
  });
  const ok = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 8000);
    c.on('message', (_t, p) => {
      if (p.toString() === expect) {
        clearTimeout(t);
        resolve(true);
      }
    });
  });
  await c.endAsync();
  return ok;
}

const waitSeen = async (payload: string, ms: number) => {
  const until = Date.now() + ms;
  while (!seen.has(payload) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  return seen.has(payload);
};

await startBroker();
{
  const k = await client(keeperOpts);
  await k.subscribeAsync('pfuzz/#', { qos: 1 });
  await k.endAsync();
}
await attachClients();

const start = Date.now();
const deadline = start + minutes * 60_000;
let sessions = 0;
let packets = 0;
let bytes = 0;
let batch = 0;
let sentinels = 0;
let lost = 0;
let worstRttMs = 0;
let restarts = 0;
let keeperMisses = 0;
let paused: Promise<void> | null = null;
let maxRss = 0;

const lane = async (i: number) => {
  while (Date.now() < deadline && !brokerDied) {
    const plans = fc.sample(propertySession, { numRuns: 20, seed: seed + i * 7_919 + batch++ });
    for (const plan of plans) {
      if (paused) await paused;
      await playSession(plan, port);
      sessions++;
      packets += plan.packets;
      bytes += plan.bytes.length;
    }
  }
};

const sentinelLoop = async () => {
  let nextRestart = start + restartEvery;
  while (Date.now() < deadline && !brokerDied) {
    const n = ++sentinels;
    const t0 = performance.now();
    try {
      await sender.publishAsync(`pfuzz/sentinel/${n}`, `s${n}`, {
        qos: 1,
        properties: { contentType: 'text/plain', userProperties: { n: String(n) } },
      });
      if (await waitSeen(`s${n}`, 5000)) worstRttMs = Math.max(worstRttMs, performance.now() - t0);
      else lost++;
    } catch {
      lost++;
    }
    if (Date.now() >= nextRestart && Date.now() + 10_000 < deadline) {
      nextRestart += restartEvery;
      await restart(`r${n}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
};

/** Queue one message for the offline persistent session, restart on the same data, check it arrives. */
async function restart(tag: string): Promise<void> {
  let release!: () => void;
  paused = new Promise((r) => (release = r));
  restarting = true;
  await sender.publishAsync('pfuzz/sentinel/restart', tag, { qos: 1, properties: { contentType: 'x' } });
  await Promise.all([live.endAsync(true), sender.endAsync(true)]);
  await stopBroker();
  await startBroker();
  restarts++;
  if (!(await visitKeeper(tag))) keeperMisses++;
  await attachClients();
  restarting = false;
  paused = null;
  release();
}

const report = setInterval(() => {
  const rss = rssMb();
  maxRss = Math.max(maxRss, rss || 0);
  const s = ((Date.now() - start) / 1000).toFixed(0).padStart(4);
  log(
    `${s}s  connections ${sessions}  packets ${packets}  (${(bytes / 1e6).toFixed(1)} MB)  broker RSS ${rss.toFixed(0)} MB  ` +
      `fuzzed delivered ${delivered - sentinels}  sentinels ${sentinels} lost ${lost} worst ${worstRttMs.toFixed(0)} ms  ` +
      `restarts ${restarts}  live disconnects ${liveDisconnects}`,
  );
}, 10_000);

log(
  `fuzz bench: ${minutes} min, seed ${seed}, ${lanes} lanes, restart every ${restartEvery / 60_000} min, data ${dataDir}`,
);
await Promise.all([...Array.from({ length: lanes }, (_, i) => lane(i)), sentinelLoop()]);
clearInterval(report);

// Final: one more restart on the same data, then the persistent session's queue and a round trip.
if (!brokerDied) await restart('final');
const finalOk = !brokerDied;
await sender.publishAsync('pfuzz/sentinel/end', 's-end', { qos: 1 }).catch(() => undefined);
const endOk = await waitSeen('s-end', 5000);
log(
  `done: ${sessions} connections, ${packets} packets (${(bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - start) / 1000).toFixed(0)} s; ` +
    `broker RSS now ${rssMb().toFixed(0)} MB, max ${maxRss.toFixed(0)} MB; sentinels ${sentinels}, lost ${lost}, worst ${worstRttMs.toFixed(0)} ms; ` +
    `restarts ${restarts}, persistent-session misses ${keeperMisses}; live disconnects ${liveDisconnects}; broker died: ${brokerDied}`,
);
restarting = true;
await Promise.all([live.endAsync(true), sender.endAsync(true)]).catch(() => undefined);
await stopBroker().catch(() => undefined);
rmSync(dataDir, { recursive: true, force: true });
process.exit(brokerDied || lost > 0 || keeperMisses > 0 || !endOk || !finalOk ? 1 : 0);
