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
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type RunningBroker } from './lib/brokers.js';
import { arg, machine, median } from './lib/common.js';
import { runLoad, type LoadSpec } from './lib/load.js';

const runs = Number(arg('runs', '7'));
const measureMs = Number(arg('measure-ms', '4000'));
const warmupMs = Number(arg('warmup-ms', '1500'));
const out = arg('out', 'bench/results/metering.json');

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
  process.env.THINGSTEAD_METERING_ENABLED = String(enabled);
  const dir = join(tmp, enabled ? 'on' : 'off');
  return startBroker('thingstead', dir);
}

async function main(): Promise<void> {
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
    runs,
    measureMs,
    warmupMs,
    summary,
  };
  console.log('\n| scenario | metering on (median msg/s) | metering off | on/off | overhead |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const s of summary)
    console.log(`| ${s.scenario} | ${s.onMedian} | ${s.offMedian} | ${s.ratio} | ${s.overheadPercent}% |`);
  console.log(`\n${JSON.stringify(report.machine)}`);
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`written ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
