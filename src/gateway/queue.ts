/**
 * Store and forward: the gateway's disk queue. Every reading is appended here before it is sent, and leaves
 * only when the platform acknowledged it (MQTT PUBACK), so an uplink outage or a gateway restart loses
 * nothing that was appended.
 *
 * Contract:
 * - Append-only segment files `seg-<first seq>.q` in `dir`; each record is
 *   `[u32 body length][u32 crc32(body)][body: u32 seq hi, u32 seq lo, f64 ts, u16 topic length, topic, payload]`.
 *   Sequence numbers rise by one per record across restarts (the consumer's duplicate check: a record
 *   sent twice carries the same seq).
 * - Durability (the fsync policy): `append` hands the record to the operating system before it returns
 *   (write(2)), so a crash or kill of the gateway process loses nothing appended. Power loss can lose what
 *   was not yet fsynced: `fsync: 'interval'` (the default) syncs the active segment every `fsyncIntervalMs`
 *   (1 s) and on roll and close; `'always'` syncs every append (slow, for small rates); `'never'` leaves it
 *   to the kernel. A torn record at the tail after power loss is detected by its CRC, cut off and counted
 *   (`corrupt`).
 * - Bounds: at most `maxBytes` on disk and records at most `maxAgeMs` old. When an append would pass
 *   `maxBytes`, the oldest segment goes (drop oldest), its unacknowledged records counted as dropped with
 *   reason `queue_full`; records older than `maxAgeMs` are dropped unsent with reason `expired`. A record
 *   larger than a segment is refused (`too_large`). Every drop is counted by reason and reported to `onDrop`.
 * - Order: `next` hands records out in sequence order; `ack` may arrive in any order. The acknowledged
 *   position (every seq up to it acknowledged) is saved to `ack.json` at most every 200 ms and on close, so
 *   after a clean restart nothing acknowledged is sent again; after a crash up to 200 ms of acknowledged
 *   records may be (same seq: the consumer's duplicate check, and the time-series store's (thing, metric, ts)
 *   key, absorb them).
 * - Single-threaded, synchronous file I/O on small buffers: meant for the gateway's event loop (thousands of
 *   records per second), not for a hot broker path.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export type FsyncPolicy = 'always' | 'interval' | 'never';
export type DropReason = 'queue_full' | 'expired' | 'too_large' | 'corrupt';
export const DROP_REASONS: readonly DropReason[] = ['queue_full', 'expired', 'too_large', 'corrupt'];

export interface QueueOptions {
  readonly dir: string;
  /** Bytes on disk at most (default 256 MiB). */
  readonly maxBytes?: number;
  /** Records older than this are dropped unsent (default 7 days). */
  readonly maxAgeMs?: number;
  /** Roll to a new segment past this size (default maxBytes / 16, between 64 KiB and 16 MiB). */
  readonly segmentBytes?: number;
  readonly fsync?: FsyncPolicy;
  readonly fsyncIntervalMs?: number;
  readonly onDrop?: (reason: DropReason, records: number) => void;
  /** The clock (tests). */
  readonly now?: () => number;
}

export interface QueuedRecord {
  readonly seq: number;
  /** Epoch ms the reading was taken. */
  readonly ts: number;
  readonly topic: string;
  /** Owned by the caller once handed out. */
  readonly payload: Buffer;
}

export interface QueueStats {
  /** Records appended and neither acknowledged nor dropped. */
  readonly pending: number;
  readonly bytes: number;
  readonly segments: number;
  /**
   * Timestamp of the oldest pending record, or null: exact while it is in flight, else the first timestamp
   * of its segment (cheap: stats are read on every health report and metrics scrape).
   */
  readonly oldestTs: number | null;
  readonly appended: number;
  readonly acked: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
  readonly lastSeq: number;
  readonly ackedThrough: number;
}

interface Segment {
  readonly file: string;
  readonly firstSeq: number;
  lastSeq: number;
  bytes: number;
  records: number;
  /** Timestamp of the segment's first record (0 while empty). */
  firstTs: number;
  lastTs: number;
}

const HEADER = 8;
const BODY_FIXED = 4 + 4 + 8 + 2;
const SEGMENT_RE = /^seg-(\d{16})\.q$/;
const ACK_SAVE_MS = 200;

export class DiskQueue {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly segmentBytes: number;
  private readonly fsyncPolicy: FsyncPolicy;
  private readonly now: () => number;
  private readonly onDrop: (reason: DropReason, records: number) => void;
  private readonly segments: Segment[] = [];
  private activeFd: number | null = null;
  private dirty = false;
  private totalBytes = 0;
  private lastSeq = 0;
  /** Every seq <= ackedThrough is acknowledged (or dropped). */
  private ackedThrough = 0;
  private readonly ackedAhead = new Set<number>();
  /** Every seq <= handedThrough was handed out by `next` (since the last rewind). */
  private handedThrough = 0;
  /** Timestamps of records handed out and not yet settled (bounded by the caller's in-flight window). */
  private readonly handedTs = new Map<number, number>();
  private ackSaved = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly fsyncTimer: NodeJS.Timeout | null = null;
  /** The read cursor: the next record `next` hands out. */
  private cursor: { segment: Segment; offset: number; fd: number } | null = null;
  private readBuf = Buffer.alloc(256 * 1024);
  /** Records read from the cursor's segment and not yet handed out (`aheadPos` is the next). */
  private ahead: QueuedRecord[] = [];
  private aheadPos = 0;
  private counts = { appended: 0, acked: 0 };
  private readonly dropped: Record<DropReason, number> = {
    queue_full: 0,
    expired: 0,
    too_large: 0,
    corrupt: 0,
  };
  private closed = false;
  /** The last file error seen off the caller's path (saving the acknowledged position), for health. */
  lastError: string | null = null;

  /**
   * Open (or create) the queue in `dir`, recovering what a previous run left: segments, the acknowledged
   * position, a torn tail record.
   * @example const q = DiskQueue.open({ dir: '/var/lib/gw/queue', maxBytes: 64 << 20 });
   */
  static open(options: QueueOptions): DiskQueue {
    return new DiskQueue(options);
  }

  private constructor(options: QueueOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.maxAgeMs = options.maxAgeMs ?? 7 * 86_400_000;
    this.segmentBytes =
      options.segmentBytes ?? Math.min(16 << 20, Math.max(64 << 10, Math.floor(this.maxBytes / 16)));
    if (this.segmentBytes * 2 > this.maxBytes)
      throw new Error(
        `queue: maxBytes (${this.maxBytes}) must hold at least two segments of ${this.segmentBytes} bytes`,
      );
    this.fsyncPolicy = options.fsync ?? 'interval';
    this.now = options.now ?? Date.now;
    this.onDrop = options.onDrop ?? (() => undefined);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.recover();
    if (this.fsyncPolicy === 'interval') {
      this.fsyncTimer = setInterval(() => this.sync(), options.fsyncIntervalMs ?? 1000);
      this.fsyncTimer.unref();
    }
  }

  private recover(): void {
    const ackFile = join(this.dir, 'ack.json');
    if (existsSync(ackFile)) {
      try {
        const a = JSON.parse(readFileSync(ackFile, 'utf8')) as { ackedThrough?: number; lastSeq?: number };
        this.ackedThrough = a.ackedThrough ?? 0;
        this.lastSeq = Math.max(a.lastSeq ?? 0, this.ackedThrough);
      } catch {
        // An unreadable ack file (power loss during the rename is not possible; a hand edit is): start from
        // the segments, which may resend acknowledged records (same seq) rather than lose any.
      }
    }
    this.ackSaved = this.ackedThrough;
    this.handedThrough = this.ackedThrough;
    const files = readdirSync(this.dir)
      .filter((f) => SEGMENT_RE.test(f))
      .sort();
    files.forEach((name, idx) => {
      const file = join(this.dir, name);
      const seg = this.scan(file, Number(SEGMENT_RE.exec(name)![1]), idx === files.length - 1);
      if (seg.records === 0 && idx !== files.length - 1) {
        rmSync(file, { force: true });
        return;
      }
      this.segments.push(seg);
      this.totalBytes += seg.bytes;
      this.lastSeq = Math.max(this.lastSeq, seg.lastSeq);
    });
    // Segments wholly acknowledged are garbage from a run that stopped before deleting them.
    while (this.segments.length > 1 && this.segments[0]!.lastSeq <= this.ackedThrough) this.removeOldest();
    const last = this.segments[this.segments.length - 1];
    if (last && last.bytes < this.segmentBytes) this.activeFd = openSync(last.file, 'a', 0o600);
    this.expire();
  }

  /** Read a segment's records' headers (and, for the active one, check every CRC and cut a torn tail). */
  private scan(file: string, firstSeq: number, isLast: boolean): Segment {
    const fd = openSync(file, 'r+');
    try {
      const size = fstatSync(fd).size;
      const seg: Segment = {
        file,
        firstSeq,
        lastSeq: firstSeq - 1,
        bytes: 0,
        records: 0,
        firstTs: 0,
        lastTs: 0,
      };
      let offset = 0;
      const head = Buffer.alloc(HEADER + BODY_FIXED);
      while (offset < size) {
        const got = readSync(fd, head, 0, head.length, offset);
        const len = got >= HEADER ? head.readUInt32BE(0) : 0;
        const ok = got === head.length && len >= BODY_FIXED && offset + HEADER + len <= size;
        let valid = ok;
        if (ok && isLast) {
          const body = Buffer.alloc(len);
          readSync(fd, body, 0, len, offset + HEADER);
          valid = crc32(body) === head.readUInt32BE(4);
        }
        if (!valid) {
          ftruncateSync(fd, offset);
          this.drop('corrupt', 1);
          break;
        }
        seg.lastSeq = head.readUInt32BE(8) * 2 ** 32 + head.readUInt32BE(12);
        seg.lastTs = head.readDoubleBE(16);
        if (seg.records === 0) seg.firstTs = seg.lastTs;
        seg.records++;
        offset += HEADER + len;
      }
      seg.bytes = offset;
      return seg;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Append one reading; returns its sequence number, or null when refused (larger than a segment: counted
   * `too_large`). Written to the OS before returning (see the fsync policy above).
   */
  append(topic: string, payload: Buffer, ts = this.now()): number | null {
    return this.appendMany([{ topic, payload, ts }])[0] ?? null;
  }

  /** Append several readings with one write; returns their sequence numbers (null where refused). */
  appendMany(records: ReadonlyArray<{ topic: string; payload: Buffer; ts?: number }>): Array<number | null> {
    if (this.closed) throw new Error('queue: closed');
    const out: Array<number | null> = [];
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let batchLastTs = 0;
    let batchFirstTs = 0;
    let batchCount = 0;
    const flush = () => {
      if (batch.length === 0) return;
      const seg = this.activeSegment();
      const buf = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      writeSync(this.activeFd!, buf);
      seg.bytes += batchBytes;
      seg.records += batchCount;
      seg.lastSeq = this.lastSeq;
      if (seg.records === batchCount) seg.firstTs = batchFirstTs;
      seg.lastTs = batchLastTs;
      this.totalBytes += batchBytes;
      this.dirty = true;
      if (this.fsyncPolicy === 'always') this.sync();
      batch = [];
      batchBytes = 0;
      batchCount = 0;
    };
    for (const r of records) {
      const topic = Buffer.from(r.topic, 'utf8');
      const len = BODY_FIXED + topic.length + r.payload.length;
      if (HEADER + len > this.segmentBytes || topic.length > 0xffff) {
        this.drop('too_large', 1);
        out.push(null);
        continue;
      }
      // Room first: roll the active segment, then drop the oldest until the record fits the bound.
      const active = this.segments[this.segments.length - 1];
      if (active && active.bytes + batchBytes + HEADER + len > this.segmentBytes) {
        flush();
        this.roll();
      }
      this.activeSegment(); // before the seq is taken: a new segment is named by its first seq
      while (this.totalBytes + batchBytes + HEADER + len > this.maxBytes && this.segments.length > 1)
        this.removeOldest('queue_full');
      const seq = ++this.lastSeq;
      const ts = r.ts ?? this.now();
      const rec = Buffer.allocUnsafe(HEADER + len);
      rec.writeUInt32BE(len, 0);
      rec.writeUInt32BE(Math.floor(seq / 2 ** 32), 8);
      rec.writeUInt32BE(seq >>> 0, 12);
      rec.writeDoubleBE(ts, 16);
      rec.writeUInt16BE(topic.length, 24);
      topic.copy(rec, 26);
      r.payload.copy(rec, 26 + topic.length);
      rec.writeUInt32BE(crc32(rec.subarray(HEADER)), 4);
      if (batch.length === 0) batchFirstTs = ts;
      batch.push(rec);
      batchBytes += rec.length;
      batchLastTs = ts;
      batchCount++;
      this.counts.appended++;
      out.push(seq);
    }
    flush();
    return out;
  }

  private activeSegment(): Segment {
    const last = this.segments[this.segments.length - 1];
    if (last && this.activeFd !== null) return last;
    const firstSeq = this.lastSeq + 1;
    const file = join(this.dir, `seg-${String(firstSeq).padStart(16, '0')}.q`);
    this.activeFd = openSync(file, 'a', 0o600);
    const seg: Segment = {
      file,
      firstSeq,
      lastSeq: firstSeq - 1,
      bytes: 0,
      records: 0,
      firstTs: 0,
      lastTs: 0,
    };
    this.segments.push(seg);
    return seg;
  }

  private roll(): void {
    if (this.activeFd === null) return;
    if (this.fsyncPolicy !== 'never') fsyncSync(this.activeFd);
    closeSync(this.activeFd);
    this.activeFd = null;
    this.dirty = false;
  }

  /** Remove the oldest segment; unacknowledged records in it are counted as dropped with `reason`. */
  private removeOldest(reason?: DropReason): void {
    const seg = this.segments.shift();
    if (!seg) return;
    const unacked = this.unackedIn(seg);
    if (reason && unacked > 0) this.drop(reason, unacked);
    if (this.cursor?.segment === seg) {
      closeSync(this.cursor.fd);
      this.cursor = null;
      this.ahead = [];
      this.aheadPos = 0;
    }
    if (this.segments.length === 0 && this.activeFd !== null) {
      closeSync(this.activeFd);
      this.activeFd = null;
    }
    rmSync(seg.file, { force: true });
    this.totalBytes -= seg.bytes;
    // Dropped records count as done for the acknowledged position.
    if (seg.lastSeq > this.ackedThrough) {
      this.ackedThrough = seg.lastSeq;
      for (const s of this.ackedAhead) if (s <= seg.lastSeq) this.ackedAhead.delete(s);
      this.advanceAck();
      this.scheduleAckSave();
    }
  }

  private unackedIn(seg: Segment): number {
    if (seg.lastSeq <= this.ackedThrough) return 0;
    const from = Math.max(seg.firstSeq, this.ackedThrough + 1);
    let n = seg.lastSeq - from + 1;
    for (const s of this.ackedAhead) if (s >= from && s <= seg.lastSeq) n--;
    return n;
  }

  private drop(reason: DropReason, records: number): void {
    this.dropped[reason] += records;
    this.onDrop(reason, records);
  }

  /** Drop whole segments older than maxAgeMs (the active one included, when all of it is old). */
  expire(): void {
    const cutoff = this.now() - this.maxAgeMs;
    while (this.segments.length > 0 && this.segments[0]!.lastTs < cutoff && this.segments[0]!.records > 0)
      this.removeOldest('expired');
  }

  /**
   * Up to `max` records after the last one handed out, in sequence order. Records past maxAgeMs are
   * dropped here (counted `expired`) instead of being sent.
   */
  next(max: number): QueuedRecord[] {
    const out: QueuedRecord[] = [];
    const cutoff = this.now() - this.maxAgeMs;
    while (out.length < max) {
      if (this.aheadPos >= this.ahead.length && !this.readAhead()) break;
      const r = this.ahead[this.aheadPos++]!;
      if (r.seq <= this.handedThrough || r.seq <= this.ackedThrough || this.ackedAhead.has(r.seq)) continue;
      this.handedThrough = r.seq;
      if (r.ts < cutoff) {
        this.drop('expired', 1);
        this.settle(r.seq);
        continue;
      }
      this.handedTs.set(r.seq, r.ts);
      out.push(r);
    }
    return out;
  }

  /**
   * Parse the next chunk of the cursor's segment into the read-ahead list (one read of up to 256 KiB, so
   * handing out one record at a time costs no read each). False when there is nothing more to read.
   */
  private readAhead(): boolean {
    this.ahead = [];
    this.aheadPos = 0;
    for (;;) {
      if (!this.cursor && !this.openCursor()) return false;
      const c = this.cursor!;
      const end = c.segment.bytes;
      if (c.offset >= end) {
        if (c.segment === this.segments[this.segments.length - 1]) return false; // caught up with the writer
        closeSync(c.fd);
        this.cursor = null;
        continue;
      }
      const got = readSync(c.fd, this.readBuf, 0, Math.min(this.readBuf.length, end - c.offset), c.offset);
      let pos = 0;
      while (pos + HEADER <= got) {
        const len = this.readBuf.readUInt32BE(pos);
        if (pos + HEADER + len > got) break;
        const body = pos + HEADER;
        const tlen = this.readBuf.readUInt16BE(body + 16);
        this.ahead.push({
          seq: this.readBuf.readUInt32BE(body) * 2 ** 32 + this.readBuf.readUInt32BE(body + 4),
          ts: this.readBuf.readDoubleBE(body + 8),
          topic: this.readBuf.toString('utf8', body + 18, body + 18 + tlen),
          payload: Buffer.from(this.readBuf.subarray(body + 18 + tlen, body + len)),
        });
        pos += HEADER + len;
      }
      if (pos === 0) {
        // A record larger than the buffer: grow it (records are at most one segment) and read again.
        if (got === 0) return false;
        this.readBuf = Buffer.alloc(Math.max(this.readBuf.length * 2, HEADER + this.readBuf.readUInt32BE(0)));
        continue;
      }
      c.offset += pos;
      return true;
    }
  }

  private openCursor(): boolean {
    const from = Math.max(this.handedThrough, this.ackedThrough);
    const seg = this.segments.find((s) => s.lastSeq > from);
    if (!seg) return false;
    this.cursor = { segment: seg, offset: 0, fd: openSync(seg.file, 'r') };
    return true;
  }

  /** Hand out again everything not acknowledged (after a connection loss that lost in-flight records). */
  rewind(): void {
    if (this.cursor) closeSync(this.cursor.fd);
    this.cursor = null;
    this.ahead = [];
    this.aheadPos = 0;
    this.handedThrough = this.ackedThrough;
    this.handedTs.clear();
  }

  /** The platform has this record: it never leaves again, and its segment goes once all of it is acked. */
  ack(seq: number): void {
    if (seq <= this.ackedThrough || this.ackedAhead.has(seq)) return;
    this.counts.acked++;
    this.settle(seq);
  }

  /** Mark a record done (acknowledged, or dropped unsent) and delete segments wholly done. */
  private settle(seq: number): void {
    this.handedTs.delete(seq);
    if (seq <= this.ackedThrough) return;
    this.ackedAhead.add(seq);
    this.advanceAck();
    while (
      this.segments.length > 1 &&
      this.segments[0]!.lastSeq <= this.ackedThrough &&
      this.cursor?.segment !== this.segments[0]
    )
      this.removeOldest();
    this.scheduleAckSave();
  }

  private advanceAck(): void {
    while (this.ackedAhead.delete(this.ackedThrough + 1)) this.ackedThrough++;
  }

  private scheduleAckSave(): void {
    if (this.ackTimer || this.closed) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      try {
        this.saveAck();
      } catch (err) {
        // Disk trouble: the position is saved again on the next ack or at close; until then a restart
        // resends (same seq) rather than loses.
        this.lastError = (err as Error).message;
      }
    }, ACK_SAVE_MS);
    this.ackTimer.unref();
  }

  private saveAck(): void {
    if (this.ackedThrough === this.ackSaved) return;
    const tmp = join(this.dir, 'ack.json.tmp');
    writeFileSync(tmp, JSON.stringify({ ackedThrough: this.ackedThrough, lastSeq: this.lastSeq }) + '\n', {
      mode: 0o600,
    });
    renameSync(tmp, join(this.dir, 'ack.json'));
    this.ackSaved = this.ackedThrough;
  }

  /** fsync the active segment if it has unsynced writes. */
  sync(): void {
    if (this.dirty && this.activeFd !== null) {
      fsyncSync(this.activeFd);
      this.dirty = false;
    }
  }

  stats(): QueueStats {
    let pending = 0;
    for (const s of this.segments) pending += this.unackedIn(s);
    const oldest = this.segments.find((s) => s.lastSeq > this.ackedThrough);
    return {
      pending,
      bytes: this.totalBytes,
      segments: this.segments.length,
      oldestTs: oldest ? (this.handedTs.get(this.ackedThrough + 1) ?? oldest.firstTs) : null,
      appended: this.counts.appended,
      acked: this.counts.acked,
      dropped: { ...this.dropped },
      lastSeq: this.lastSeq,
      ackedThrough: this.ackedThrough,
    };
  }

  /** Sync, save the acknowledged position and close the files. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.saveAck();
    if (this.activeFd !== null) {
      if (this.fsyncPolicy !== 'never') fsyncSync(this.activeFd);
      closeSync(this.activeFd);
      this.activeFd = null;
    }
    if (this.cursor) closeSync(this.cursor.fd);
    this.cursor = null;
  }
}
