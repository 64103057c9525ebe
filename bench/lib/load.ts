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
  /** Subscribers connect here instead of `port` (cluster: publish on one node, receive on another). */
  readonly subscriberPort?: number;
  /** Deliveries per PUBLISH (default: one per subscriber; 1 for a share group). */
  readonly fanout?: number;
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

/** A load that runs until stopped; `counts()` reads the shared counters at any time (for time slices). */
export interface RunningLoad {
  /** Messages sent by the publishers and delivered to the subscribers so far. */
  counts(): { sent: number; delivered: number };
  /** End the warm-up: latency samples are recorded from now on. */
  record(): void;
  /** Throws the first worker failure, if any. */
  check(): void;
  /** Stop the workers and collect their results (latency samples from the recording phase). */
  stop(): Promise<{ stalls: number; latency?: LoadResult['latency'] }>;
}

/** One measured run: warm up, count deliveries over the window, stop. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const load = await startLoad(spec);
  try {
    await sleep(spec.warmupMs);
    load.check();
    load.record();
    const t0 = performance.now();
    const c0 = load.counts();
    await sleep(spec.measureMs);
    const c1 = load.counts();
    const seconds = (performance.now() - t0) / 1000;
    load.check();
    const r = await load.stop();
    return {
      deliveredPerSec: (c1.delivered - c0.delivered) / seconds,
      sentPerSec: (c1.sent - c0.sent) / seconds,
      stalls: r.stalls,
      latency: r.latency,
    };
  } finally {
    await load.stop();
  }
}

/** Start publishers and subscribers and let them run; the caller slices time with `counts()`. */
export async function startLoad(spec: LoadSpec): Promise<RunningLoad> {
  // Slot 0: phase; slot 1: publisher sent; slot 2: subscriber received.
  const shared = new SharedArrayBuffer(4 * 3);
  const counters = new Int32Array(shared);
  const common = { port: spec.port, qos: spec.qos, shared };
  const sub: SubSpec = {
    ...common,
    port: spec.subscriberPort ?? spec.port,
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
    fanout: spec.fanout ?? spec.subscribers,
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
  let stopping: Promise<{ stalls: number; latency?: LoadResult['latency'] }> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      try {
        for (const w of workers) send(w, { type: 'stop' });
        const deadline = Date.now() + 10_000;
        // One result from the subscriber and one from the publisher (a latency pair sends both).
        while (results.length < 2 && Date.now() < deadline && !failure) await sleep(10);
        const subResult = results.find((r) => r.role === 'sub');
        const pubResult = results.find((r) => r.role === 'pub');
        return { stalls: pubResult?.stalls ?? 0, latency: subResult?.latency };
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    })());
  try {
    // Latency runs keep publisher and subscriber on one thread; throughput runs give each its own.
    if (!spec.latency) await start(sub);
    const pubW = await start(spec.latency ? { role: 'pair', pub, sub } : pub);
    send(pubW, { type: 'go' });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return {
    counts: () => ({ sent: Atomics.load(counters, 1), delivered: Atomics.load(counters, 2) }),
    record: () => Atomics.store(counters, PHASE, PHASE_RECORD),
    check,
    stop,
  };
}
