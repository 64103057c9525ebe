/**
 * Metering overhead: broker throughput with metering on and off in one run (issue 16's target: at most 2%
 * apart). Two Thingstead processes (`thingstead up` from dist/, metering.enabled true and false, otherwise
 * the same defaults as bench/run.js) are started side by side; runs are interleaved (on, off, on, off, ...)
 * so background load hits both alike; each figure is the median over the runs.
 *
 * Scenarios (the load generator of bench/lib, 32-byte payloads, MQTT 3.1.1, loopback TCP):
 * - qos0 fan-in: 20 publishers on their own topics -> 1 subscriber on `bench/#` (every PUBLISH in and
 *   every delivery out is metered: 21 connections counting);
 * - qos1 fan-in: the same at QoS 1 (PUBACKs from the subscriber are metered too).
 *
 * Usage: npm run build && node --import tsx bench/metering.ts [--runs=7] [--measure-ms=4000] [--out=file]
 *        [--control]  (A/A: both processes with metering off; the spread it shows is the machine's noise)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type RunningBroker } from './lib/brokers.js';
import { arg, machine, median } from './lib/common.js';
import { runLoad, type LoadSpec } from './lib/load.js';
import type { Meter as MeterType } from '../src/metering/meter.js';

const runs = Number(arg('runs', '7'));
const measureMs = Number(arg('measure-ms', '4000'));
const warmupMs = Number(arg('warmup-ms', '1500'));
/** --control: an A/A run, both processes with metering off, to show what the machine's noise alone gives. */
const control = process.argv.includes('--control');
const out = arg('out', control ? 'bench/results/metering-control.json' : 'bench/results/metering.json');

let seq = 0;
const spec = (port: number, qos: 0 | 1): LoadSpec => ({
  port,
  qos,
  publishers: 20,
  subscribers: 1,
  topicBase: 'bench/in',
  sharedTopic: false,
  filter: 'bench/#',
  payloadBytes: 32,
  window: 100,
  gate: qos === 1 ? 1000 : 20_000,
  rate: 0,
  latency: false,
  warmupMs,
  measureMs,
  id: `m${process.pid}-${++seq}`,
});

async function start(enabled: boolean, tmp: string): Promise<RunningBroker> {
  // startBroker passes process.env on to `thingstead up` (config from THINGSTEAD_* variables).
  process.env.THINGSTEAD_METERING_ENABLED = String(enabled && !control);
  const dir = join(tmp, enabled ? 'on' : 'off');
  return startBroker('thingstead', dir);
}

/**
 * The meter's own cost per message, in-process and far steadier than the loopback figures: what a QoS 0
 * fan-in message costs the hot path with metering on (the size from the Remaining Length, publishIn, the
 * delivery's publishOut, the byte counters), in ns, median of 5 rounds of 2 million messages. Runs the
 * built code in dist/ (native ES modules: under tsx every imported function is a getter call, which
 * triples these figures).
 */
async function microCost(): Promise<{ nsPerMessage: number; rounds: number[] }> {
  // A computed specifier: dist/ exists only after `npm run build` (the type check runs before it).
  const dist = new URL('../dist/metering/', import.meta.url).href;
  const { Meter } = (await import(`${dist}meter.js`)) as { Meter: typeof MeterType };
  const { AWS_THING_DEFAULTS } = (await import(
    `${dist}quotas.js`
  )) as typeof import('../src/metering/quotas.js');
  const meter = new Meter({
    now: Date.now,
    groupOf: () => null,
    explicit: () => ({ things: new Map(), groups: new Map() }),
    thingDefaults: AWS_THING_DEFAULTS,
    onThrottle: () => undefined,
  });
  const subject = {
    clientId: 'bench-1',
    principal: { kind: 'anonymous' as const, id: 'anonymous' },
    info: { transport: 'tcp' as const, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2 },
  };
  const inbound = meter.open(subject, 0);
  const outbound = meter.open({ ...subject, clientId: 'bench-sub' }, 0);
  const topic = 'bench/in/7';
  const remaining = 2 + topic.length + 32; // QoS 0, 3.1.1: topic length field + topic + payload
  const n = 2_000_000;
  const rounds: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      inbound.bytesIn += 46;
      inbound.publishIn(remaining - 2, false, topic);
      outbound.publishOut(42);
      outbound.bytesOut += 46;
    }
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (r > 0) rounds.push(Number(ns.toFixed(1))); // the first round warms up the JIT
    meter.drain();
    meter.takeRows();
  }
  return { nsPerMessage: median(rounds), rounds };
}

async function main(): Promise<void> {
  const micro = await microCost();
  console.log(
    `meter cost per QoS 0 fan-in message (in + out): ${micro.nsPerMessage} ns (rounds ${micro.rounds.join(', ')})`,
  );
  const tmp = mkdtempSync(join(tmpdir(), 'bench-metering-'));
  const loadStart = loadavg().map((x) => Number(x.toFixed(2)));
  const on = await start(true, tmp);
  const off = await start(false, tmp);
  const results: Record<string, { on: number[]; off: number[] }> = {
    qos0_fanin: { on: [], off: [] },
    qos1_fanin: { on: [], off: [] },
  };
  try {
    for (let i = 0; i < runs; i++) {
      for (const [key, qos] of [
        ['qos0_fanin', 0],
        ['qos1_fanin', 1],
      ] as const) {
        // Alternate which goes first, so neither always runs right after the other's load.
        const order = i % 2 === 0 ? ([on, off] as const) : ([off, on] as const);
        for (const b of order) {
          const r = await runLoad(spec(b.port, qos));
          results[key]![b === on ? 'on' : 'off'].push(r.deliveredPerSec);
          console.log(
            `run ${i + 1}/${runs} ${key} metering ${b === on ? 'on ' : 'off'}: ${Math.round(r.deliveredPerSec)} msg/s`,
          );
        }
      }
    }
  } finally {
    await on.stop();
    await off.stop();
    delete process.env.THINGSTEAD_METERING_ENABLED;
    rmSync(tmp, { recursive: true, force: true });
  }
  const summary = Object.entries(results).map(([scenario, r]) => {
    const mOn = median(r.on);
    const mOff = median(r.off);
    return {
      scenario,
      onMedian: Math.round(mOn),
      offMedian: Math.round(mOff),
      ratio: Number((mOn / mOff).toFixed(4)),
      overheadPercent: Number((((mOff - mOn) / mOff) * 100).toFixed(2)),
      on: r.on.map(Math.round),
      off: r.off.map(Math.round),
    };
  });
  const report = {
    machine: {
      ...machine(),
      loadavgAtStart: loadStart,
      loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
    },
    control,
    runs,
    measureMs,
    warmupMs,
    summary,
    meterNsPerMessage: micro,
    // What the meter's per-message cost is of the broker's per-message time at the metering-off median
    // (2 cores: the broker process uses about one).
    meterShareOfBrokerTime: summary.map((x) => ({
      scenario: x.scenario,
      percent: Number((((micro.nsPerMessage * x.offMedian) / 1e9) * 100).toFixed(2)),
    })),
  };
  console.log('\n| scenario | metering on (median msg/s) | metering off | on/off | overhead |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const s of summary)
    console.log(`| ${s.scenario} | ${s.onMedian} | ${s.offMedian} | ${s.ratio} | ${s.overheadPercent}% |`);
  for (const m of report.meterShareOfBrokerTime)
    console.log(`meter share of broker time per message (${m.scenario}, at the off median): ${m.percent}%`);
  console.log(`\n${JSON.stringify(report.machine)}`);
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`written ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
