/**
 * One measured load run: start subscriber and publisher worker threads against a broker port, warm up,
 * count deliveries over a fixed window, stop. Send and receive clocks are the same process's monotonic
 * clock, so latency needs no clock sync.
 */
import { Worker } from 'node:worker_threads';
import {
  PHASE,
  PHASE_RECORD,
  type FromWorker,
  type PubSpec,
  type SubSpec,
  type ToWorker,
  type WorkerSpec,
} from './protocol.js';

export interface LoadSpec {
  readonly port: number;
  readonly qos: 0 | 1;
  readonly publishers: number;
  readonly subscribers: number;
  /** Topic per publisher connection: `${topicBase}/${i}`, or exactly `topicBase` when shared. */
  readonly topicBase: string;
  readonly sharedTopic: boolean;
  readonly filter: string;
  readonly payloadBytes: number;
  readonly window: number;
  readonly gate: number;
  /** Offered msg/s across all publishers; 0 = as fast as the gate allows. */
  readonly rate: number;
  readonly latency: boolean;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Prefix for client ids (unique per run). */
  readonly id: string;
}

export interface LoadResult {
  /** Messages delivered to subscribers per second (all subscribers together). */
  readonly deliveredPerSec: number;
  /** PUBLISHes written by the publishers per second. */
  readonly sentPerSec: number;
  readonly stalls: number;
  readonly latency?: { samples: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Workers do not inherit the tsx loader on Node 20: a tiny bootstrap registers it, then loads worker.ts.
const workerBoot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); });`;

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  // Slot 0: phase; slot 1: publisher sent; slot 2: subscriber received.
  const shared = new SharedArrayBuffer(4 * 3);
  const counters = new Int32Array(shared);
  const common = { port: spec.port, qos: spec.qos, shared };
  const sub: SubSpec = {
    ...common,
    role: 'sub',
    conns: spec.subscribers,
    clientPrefix: `${spec.id}-sub`,
    slot: 2,
    filter: spec.filter,
    latency: spec.latency,
  };
  const topics = spec.sharedTopic
    ? [spec.topicBase]
    : Array.from({ length: spec.publishers }, (_, i) => `${spec.topicBase}/${i}`);
  const pub: PubSpec = {
    ...common,
    role: 'pub',
    conns: spec.publishers,
    clientPrefix: `${spec.id}-pub`,
    slot: 1,
    topics,
    payloadBytes: spec.payloadBytes,
    window: spec.window,
    gate: spec.gate,
    fanout: spec.subscribers,
    pubSlots: [1],
    subSlots: [2],
    rate: spec.rate,
    timestamps: spec.latency,
  };

  const workers: Worker[] = [];
  const results: Array<Extract<FromWorker, { type: 'result' }>> = [];
  let failure: Error | null = null;
  /** Throws the first worker failure, if any (a function, so TS does not narrow across awaits). */
  const check = () => {
    if (failure) throw failure;
  };
  const start = (data: WorkerSpec) =>
    new Promise<Worker>((resolve, reject) => {
      const w = new Worker(workerBoot, { eval: true, workerData: data });
      workers.push(w);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') resolve(w);
        else if (m.type === 'error') {
          failure ??= new Error(`${data.role}: ${m.message}`);
          reject(failure);
        } else results.push(m);
      });
      w.on('error', (err) => {
        failure ??= err;
        reject(err);
      });
    });
  const send = (w: Worker, m: ToWorker) => w.postMessage(m);
  try {
    // Latency runs keep publisher and subscriber on one thread; throughput runs give each its own.
    const subW = spec.latency ? null : await start(sub);
    const pubW = await start(spec.latency ? { role: 'pair', pub, sub } : pub);
    send(pubW, { type: 'go' });
    await sleep(spec.warmupMs);
    check();
    Atomics.store(counters, PHASE, PHASE_RECORD);
    const t0 = performance.now();
    const r0 = Atomics.load(counters, 2);
    const s0 = Atomics.load(counters, 1);
    await sleep(spec.measureMs);
    const r1 = Atomics.load(counters, 2);
    const s1 = Atomics.load(counters, 1);
    const seconds = (performance.now() - t0) / 1000;
    check();
    send(pubW, { type: 'stop' });
    if (subW) send(subW, { type: 'stop' });
    const deadline = Date.now() + 10_000;
    while (results.length < 2 && Date.now() < deadline && !failure) await sleep(10);
    const subResult = results.find((r) => r.role === 'sub');
    const pubResult = results.find((r) => r.role === 'pub');
    return {
      deliveredPerSec: (r1 - r0) / seconds,
      sentPerSec: (s1 - s0) / seconds,
      stalls: pubResult?.stalls ?? 0,
      latency: subResult?.latency,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
