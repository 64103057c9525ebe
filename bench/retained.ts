/**
 * Retained lookup micro-benchmark (issue 8). Run: `node --expose-gc --import tsx bench/retained.ts
 * [--topics 1000000]`.
 *
 * Builds a RetainedStore of N retained topics `dev/<d>/s/<k>` (10,000 devices x N/10,000 keys) and times
 * `match()` for a narrow wildcard, a mid-width one and `#`, against the previous algorithm (a scan of
 * every entry with topicMatches, which is what match() did before the topic index). Also reports the heap
 * held by the store (with --expose-gc) and the time of one replay chunk from a cursor.
 */
import { performance } from 'node:perf_hooks';
import { RetainedStore } from '../src/mqtt/retained.js';
import { topicMatches } from '../src/mqtt/index.js';
import { arg } from './lib/common.js';

const N = Number(arg('topics', '1000000'));
const DEVICES = 10_000;
const KEYS = Math.max(1, Math.floor(N / DEVICES));
const gc = (globalThis as { gc?: () => void }).gc;

function heapMb(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

function time(fn: () => number, minMs = 300): { ms: number; result: number } {
  let runs = 1;
  const t0 = performance.now();
  const result = fn();
  while (performance.now() - t0 < minMs) {
    fn();
    runs++;
  }
  return { ms: (performance.now() - t0) / runs, result };
}

const heap0 = heapMb();
const store = new RetainedStore(() => undefined);
const payload = Buffer.from('{"state":"on"}');
const tBuild = performance.now();
for (let d = 0; d < DEVICES; d++)
  for (let k = 0; k < KEYS; k++)
    store.set({ topic: `dev/${d}/s/${k}`, payload, qos: 0, properties: undefined, expiresAt: null });
const buildMs = performance.now() - tBuild;
const heap1 = heapMb();

/** The previous match(): every entry tested against the filter. */
function scan(filter: string): number {
  let n = 0;
  for (const e of store.all()) if (topicMatches(filter, e.topic)) n++;
  return n;
}

const filters = [`dev/1234/s/+`, `dev/+/s/7`, `dev/1234/#`, '#'];
console.log(
  `${store.size.toLocaleString()} retained topics; built in ${buildMs.toFixed(0)} ms; ` +
    `heap ${(heap1 - heap0).toFixed(0)} MB (${(((heap1 - heap0) * 1e6) / store.size).toFixed(0)} B/entry)`,
);
console.log('| filter | matches | scan (before) | index (after) | speed-up |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const f of filters) {
  const before = time(() => scan(f), 500);
  const after = time(() => store.match(f).length);
  if (before.result !== after.result) throw new Error(`${f}: scan ${before.result} != index ${after.result}`);
  console.log(
    `| \`${f}\` | ${after.result.toLocaleString()} | ${before.ms.toFixed(2)} ms | ${
      after.ms < 1 ? `${(after.ms * 1000).toFixed(1)} µs` : `${after.ms.toFixed(2)} ms`
    } | ${(before.ms / after.ms).toFixed(0)}x |`,
  );
}
const chunk = time(() => {
  const out: unknown[] = [];
  store.cursor('#').take(out as never[], 512, 4096);
  return out.length;
});
console.log(`one replay chunk of '#' (512 entries from a fresh cursor): ${(chunk.ms * 1000).toFixed(0)} µs`);
