import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskQueue, type DropReason } from './queue.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'gw-queue-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const body = (i: number) => Buffer.from(JSON.stringify({ i }));

describe('disk queue', () => {
  it('hands records out in order, once, and forgets them when acknowledged', () => {
    const q = DiskQueue.open({ dir: fresh(), maxBytes: 1 << 20 });
    const t0 = Date.now();
    for (let i = 1; i <= 10; i++) expect(q.append('t', body(i), t0 + i)).toBe(i);
    const first = q.next(4);
    expect(first.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(JSON.parse(first[2]!.payload.toString())).toEqual({ i: 3 });
    expect(first[0]).toMatchObject({ topic: 't', ts: t0 + 1 });
    expect(q.next(100).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(q.next(100)).toEqual([]);
    for (const s of [2, 1, 3]) q.ack(s); // out of order
    expect(q.stats()).toMatchObject({ pending: 7, ackedThrough: 3, acked: 3 });
    q.rewind(); // a lost connection: everything unacknowledged again
    expect(q.next(100).map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    q.close();
  });

  it('survives a restart: unacknowledged records come back, acknowledged ones do not, seq continues', () => {
    const dir = fresh();
    let q = DiskQueue.open({ dir, maxBytes: 1 << 20 });
    for (let i = 1; i <= 5; i++) q.append('t', body(i));
    q.next(5).forEach((r) => r.seq <= 2 && q.ack(r.seq));
    q.close();
    q = DiskQueue.open({ dir, maxBytes: 1 << 20 });
    expect(q.next(100).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(q.append('t', body(6))).toBe(6);
    q.close();
  });

  it('rolls segments and deletes them once acknowledged', () => {
    const dir = fresh();
    const q = DiskQueue.open({ dir, maxBytes: 1 << 20, segmentBytes: 1024 });
    for (let i = 1; i <= 200; i++) q.append('topic/x', body(i));
    const segments = readdirSync(dir).filter((f) => f.endsWith('.q')).length;
    expect(segments).toBeGreaterThan(5);
    for (const r of q.next(1000)) q.ack(r.seq);
    expect(q.stats()).toMatchObject({ pending: 0, segments: 1 });
    expect(readdirSync(dir).filter((f) => f.endsWith('.q'))).toHaveLength(1);
    q.close();
  });

  it('drops the oldest when full, counted with reason queue_full, and stays within maxBytes', () => {
    const drops: Array<[DropReason, number]> = [];
    const dir = fresh();
    const q = DiskQueue.open({
      dir,
      maxBytes: 8192,
      segmentBytes: 1024,
      onDrop: (r, n) => drops.push([r, n]),
    });
    for (let i = 1; i <= 1000; i++) q.append('t', body(i));
    const s = q.stats();
    expect(s.bytes).toBeLessThanOrEqual(8192);
    const onDisk = readdirSync(dir)
      .filter((f) => f.endsWith('.q'))
      .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(onDisk).toBe(s.bytes);
    expect(s.dropped.queue_full).toBe(drops.reduce((n, [, k]) => n + k, 0));
    expect(s.dropped.queue_full + s.pending).toBe(1000);
    // what is left is the newest, still in order
    const left = q.next(10_000).map((r) => r.seq);
    expect(left[left.length - 1]).toBe(1000);
    expect(left).toEqual([...left].sort((a, b) => a - b));
    expect(left.length).toBe(s.pending);
    q.close();
  });

  it('drops records past maxAge unsent (expired), and refuses a record larger than a segment', () => {
    let now = 1_000_000;
    const q = DiskQueue.open({
      dir: fresh(),
      maxBytes: 1 << 20,
      maxAgeMs: 1000,
      segmentBytes: 4096,
      now: () => now,
    });
    q.append('t', body(1));
    q.append('t', body(2));
    now += 600;
    q.append('t', body(3));
    now += 600; // 1 and 2 are 1200 ms old, 3 is 600 ms old
    expect(q.next(10).map((r) => r.seq)).toEqual([3]);
    expect(q.stats().dropped.expired).toBe(2);
    expect(q.append('t', Buffer.alloc(5000))).toBeNull();
    expect(q.stats().dropped.too_large).toBe(1);
    q.close();
  });

  it('cuts a torn tail record after a crash and counts it corrupt', () => {
    const dir = fresh();
    let q = DiskQueue.open({ dir, maxBytes: 1 << 20 });
    for (let i = 1; i <= 3; i++) q.append('t', body(i));
    q.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.q'))!;
    appendFileSync(join(dir, seg), Buffer.from([0, 0, 0, 40, 1, 2, 3])); // half a record
    q = DiskQueue.open({ dir, maxBytes: 1 << 20 });
    expect(q.stats().dropped.corrupt).toBe(1);
    expect(q.next(10).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(q.append('t', body(4))).toBe(4);
    expect(q.next(10).map((r) => r.seq)).toEqual([4]);
    q.close();
  });

  it('replays a large backlog quickly while new records keep arriving', () => {
    const q = DiskQueue.open({ dir: fresh(), maxBytes: 64 << 20 });
    const payload = Buffer.alloc(120, 'x');
    for (let i = 0; i < 20_000; i++) q.append('things/gw/field/plc', payload);
    let seen = 0;
    let last = 0;
    for (;;) {
      const batch = q.next(500);
      if (batch.length === 0) break;
      for (const r of batch) {
        expect(r.seq).toBe(last + 1);
        last = r.seq;
        q.ack(r.seq);
      }
      seen += batch.length;
      if (seen < 20_000) q.append('things/gw/field/plc', payload); // live data during the replay
    }
    expect(last).toBe(q.stats().lastSeq);
    expect(q.stats().pending).toBe(0);
    q.close();
  });
});
