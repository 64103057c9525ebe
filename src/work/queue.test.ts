import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/helpers/platform.js';
import { createLogger, createMetricsRegistry } from '../observability/index.js';
import { WorkQueue, type WorkDropReason } from './index.js';

const silent = createLogger('silent');

/** A logger whose JSON lines are kept, to assert what was logged. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

const turn = () => new Promise((r) => setImmediate(r));

function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('WorkQueue', () => {
  it('never runs the handler on the pusher’s stack; items are handled in push order', async () => {
    const seen: number[] = [];
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 10,
      logger: silent,
      handle: (n) => void seen.push(n),
    });
    expect(q.push(1)).toBe(true);
    expect(q.push(2)).toBe(true);
    expect(seen).toEqual([]);
    expect(q.depth).toBe(2);
    await q.idle();
    expect(seen).toEqual([1, 2]);
    expect(q.stats()).toMatchObject({ depth: 0, processed: 2, failed: 0 });
  });

  it('is bounded by items: overflow is refused and counted as queue_full, onDrop told', async () => {
    const drops: Array<[number, WorkDropReason]> = [];
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 3,
      logger: silent,
      handle: () => undefined,
      onDrop: (n, reason) => drops.push([n, reason]),
    });
    const accepted = [1, 2, 3, 4, 5].map((n) => q.push(n));
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(drops).toEqual([
      [4, 'queue_full'],
      [5, 'queue_full'],
    ]);
    await q.idle();
    // Room again once drained.
    expect(q.push(6)).toBe(true);
    await q.idle();
    expect(q.stats()).toMatchObject({ processed: 4, dropped: { queue_full: 2, shutdown: 0 } });
  });

  it('is bounded by bytes; an item larger than the budget still runs alone', async () => {
    const q = new WorkQueue<Buffer>({
      name: 't',
      maxItems: 100,
      maxBytes: 10,
      sizeOf: (b) => b.length,
      logger: silent,
      handle: () => undefined,
    });
    expect(q.push(Buffer.alloc(6))).toBe(true);
    expect(q.bytes).toBe(6);
    expect(q.push(Buffer.alloc(4))).toBe(true);
    expect(q.push(Buffer.alloc(1))).toBe(false);
    await q.idle();
    expect(q.bytes).toBe(0);
    expect(q.push(Buffer.alloc(50))).toBe(true);
    expect(q.push(Buffer.alloc(1))).toBe(false);
    await q.idle();
    expect(q.stats()).toMatchObject({ processed: 3, bytes: 0, dropped: { queue_full: 2 } });
  });

  it('runs at most `concurrency` async handlers at once', async () => {
    let running = 0;
    let peak = 0;
    const gates: Array<() => void> = [];
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 100,
      concurrency: 3,
      logger: silent,
      handle: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
      },
    });
    for (let i = 0; i < 10; i++) q.push(i);
    await waitFor(() => gates.length === 3);
    await turn();
    expect(q.inFlight).toBe(3);
    expect(q.depth).toBe(7);
    while (q.stats().processed < 10) {
      gates.shift()?.();
      await turn();
    }
    await q.idle();
    expect(peak).toBe(3);
    expect(q.stats()).toMatchObject({ processed: 10, inFlight: 0, depth: 0 });
  });

  it('a throwing or rejecting handler is counted and logged, never fatal', async () => {
    const { logger, lines } = capturingLogger();
    const errors: number[] = [];
    const done: number[] = [];
    const q = new WorkQueue<number>({
      name: 'flaky',
      maxItems: 10,
      concurrency: 2,
      logger,
      onError: (n) => errors.push(n),
      handle: (n) => {
        if (n === 1) throw new Error('sync boom');
        if (n === 2) return Promise.reject(new Error('async boom'));
        done.push(n);
      },
    });
    for (const n of [0, 1, 2, 3]) q.push(n);
    await q.idle();
    expect(done).toEqual([0, 3]);
    expect(errors.sort()).toEqual([1, 2]);
    expect(q.stats()).toMatchObject({ processed: 2, failed: 2 });
    const logged = lines.filter((l) => l.msg === 'work queue handler failed');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ queue: 'flaky' });
  });

  it('an owner callback that throws is logged, and the queue goes on', async () => {
    const { logger, lines } = capturingLogger();
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 1,
      logger,
      handle: () => undefined,
      onDrop: () => {
        throw new Error('bad callback');
      },
    });
    q.push(1);
    expect(q.push(2)).toBe(false);
    await q.idle();
    expect(lines.some((l) => l.msg === 'work queue callback threw')).toBe(true);
    expect(q.stats()).toMatchObject({ processed: 1, dropped: { queue_full: 1 } });
  });

  it('close drains: queued items are handled, in-flight ones awaited, later pushes refused (shutdown)', async () => {
    const done: number[] = [];
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 100,
      concurrency: 2,
      logger: silent,
      handle: async (n) => {
        await new Promise((r) => setTimeout(r, 5));
        done.push(n);
      },
    });
    for (let i = 0; i < 6; i++) q.push(i);
    const closed = q.close();
    expect(q.push(99)).toBe(false);
    await closed;
    expect(done.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(q.stats()).toMatchObject({ processed: 6, depth: 0, inFlight: 0, dropped: { shutdown: 1 } });
  });

  it('close with a timeout drops what is still queued (shutdown) and returns', async () => {
    const gate = deferred();
    const q = new WorkQueue<number>({ name: 't', maxItems: 100, logger: silent, handle: () => gate.promise });
    for (let i = 0; i < 4; i++) q.push(i);
    await waitFor(() => q.inFlight === 1);
    await q.close({ timeoutMs: 20 });
    expect(q.stats()).toMatchObject({ depth: 0, dropped: { shutdown: 3 } });
    gate.resolve();
  });

  it('yields to the event loop while draining a long run of synchronous work', async () => {
    let timerFiredAt = -1;
    let handled = 0;
    const q = new WorkQueue<number>({
      name: 't',
      maxItems: 100_000,
      sliceMs: 2,
      logger: silent,
      handle: () => {
        const until = performance.now() + 0.05;
        while (performance.now() < until);
        handled++;
      },
    });
    for (let i = 0; i < 2000; i++) q.push(i);
    setTimeout(() => (timerFiredAt = handled), 1);
    await q.idle();
    expect(timerFiredAt).toBeGreaterThan(0);
    expect(timerFiredAt).toBeLessThan(2000);
  });

  it('exports thingstead_work_* metrics per queue name', async () => {
    const metrics = createMetricsRegistry({ processMetrics: false });
    const gate = deferred();
    const a = new WorkQueue<number>({
      name: 'a',
      maxItems: 2,
      metrics,
      logger: silent,
      handle: () => gate.promise,
    });
    const b = new WorkQueue<number>({
      name: 'b',
      maxItems: 5,
      metrics,
      logger: silent,
      handle: () => {
        throw new Error('x');
      },
    });
    for (let i = 0; i < 4; i++) a.push(i);
    b.push(1);
    await b.idle();
    await waitFor(() => a.inFlight === 1);
    const text = await metrics.metrics();
    expect(text).toContain('thingstead_work_queue_depth{queue="a"} 1');
    expect(text).toContain('thingstead_work_in_flight{queue="a"} 1');
    expect(text).toContain('thingstead_work_dropped_total{queue="a",reason="queue_full"} 2');
    expect(text).toContain('thingstead_work_failed_total{queue="b"} 1');
    gate.resolve();
    await a.close();
    const after = await metrics.metrics();
    expect(after).toContain('thingstead_work_processed_total{queue="a"} 2');
    expect(after).not.toContain('thingstead_work_queue_depth{queue="a"}');
  });
});
