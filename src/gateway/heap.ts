/**
 * The gateway's young-generation cap. V8 grows the new space (two semi-spaces) up to 16 MB each on 64-bit
 * under a steady allocation rate; at 1,000 records/s the gateway's reaches it and keeps 32 MB resident that a
 * 4 MB semi-space does the same work in (more, shorter scavenges; measured in docs/gateway.md, memory).
 * `--max-semi-space-size` is read only when the process starts, so a command cannot pass it to itself; the
 * growth factor is read each time V8 grows the new space, so this holds it at 1 (no growth) while the new space
 * is at the cap, and at V8's default of 2 below it (V8 may also shrink it when allocation drops).
 *
 * Contract: process-wide (V8 has one heap per isolate); checked after each garbage collection (a
 * PerformanceObserver on 'gc', off the hot path). The new space can overshoot the cap by one doubling when two
 * growths fall between checks. `v8.setFlagsFromString` after start is documented as undefined behaviour in
 * general; this flag is one V8 reads at every growth, and the test below checks the effect on this Node.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const V8_DEFAULT_GROWTH = 2;

/** The new space's current size (both semi-spaces), in bytes. */
export function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Keep V8's semi-space at most about `semiSpaceMb` (the new space twice that). Returns a function that stops
 * capping and restores V8's default growth. Example: `const stop = capYoungGeneration(4);`.
 */
export function capYoungGeneration(semiSpaceMb: number): () => void {
  const cap = semiSpaceMb * 2 * 1024 * 1024;
  let growth = V8_DEFAULT_GROWTH;
  const check = () => {
    const want = newSpaceBytes() >= cap ? 1 : V8_DEFAULT_GROWTH;
    if (want === growth) return;
    growth = want;
    setFlagsFromString(`--semi-space-growth-factor=${want}`);
  };
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  check();
  return () => {
    observer.disconnect();
    if (growth !== V8_DEFAULT_GROWTH) setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH}`);
    growth = V8_DEFAULT_GROWTH;
  };
}
