import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Allocate short-lived garbage with a little surviving for 1.5 s in a fresh process; print the new space size. */
function newSpaceAfterLoad(capMb: number | null): number {
  const script = `
    import { capYoungGeneration, newSpaceBytes } from './src/gateway/heap.ts';
    ${capMb === null ? '' : `capYoungGeneration(${capMb});`}
    let keep = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) {
      for (let i = 0; i < 1000; i++) keep.push({ i, s: 'x' + i, b: Buffer.from('payload' + i) });
      if (keep.length > 100000) keep = [];
      await new Promise((r) => setImmediate(r));
    }
    console.log(newSpaceBytes());`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

describe('capYoungGeneration', () => {
  it('holds the new space near the cap where V8 alone grows it past', () => {
    const mb = 1024 * 1024;
    const uncapped = newSpaceAfterLoad(null);
    const capped = newSpaceAfterLoad(2);
    expect(uncapped).toBeGreaterThan(8 * mb);
    // Cap 2 MB per semi-space: the new space 4 MB, or 8 MB after one doubling between checks.
    expect(capped).toBeLessThanOrEqual(8 * mb);
  });
});
