/**
 * Retained messages [MQTT-3.3.1-5..8]: one per topic, held in memory and persisted through the store batch.
 * A retained PUBLISH with an empty payload clears the topic [MQTT-3.3.1-10, MQTT-3.3.1-11]. Entries with
 * a Message Expiry Interval disappear when it passes [MQTT-3.3.2-5].
 *
 * Quotas (issue 8): retained messages per client (the owner of an entry is the client id that last set it,
 * persisted with the entry) and in total, by count and bytes (payload + topic). `admit()` is the check the
 * handlers call before routing a retained PUBLISH or will; `set()` enforces the total caps again as a
 * backstop, so nothing can grow the store past them. Replacing a topic is not a new entry; clearing frees.
 *
 * Wildcard lookups go through a topic trie (retained-index.ts), never a scan of every entry.
 */
import type { StoreOp, StoredRetained } from './store.js';
import type { PublishProperties } from './types.js';
import { TopicIndex, type IndexCursor } from './retained-index.js';

export interface RetainedEntry {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly properties: PublishProperties | undefined;
  readonly expiresAt: number | null;
  readonly modifiedAt: number;
  /** Client id that last set it; null for the platform's own publishes without a publisher. */
  readonly owner: string | null;
  /** Bytes counted against `limits.maxRetainedBytes`: payload + UTF-8 topic. */
  readonly bytes: number;
  /**
   * Position in the store's listing order (`page()`): given when the topic is first retained, kept when it
   * is replaced, new (larger) when it is retained again after a clear. In-memory only, never persisted.
   */
  readonly seq: number;
}

/** One page of `RetainedStore.page()`: the entries and the position to continue from (null: the last page). */
export interface RetainedPage {
  readonly entries: RetainedEntry[];
  readonly next: number | null;
}

/** Listing positions whose live iterator is kept for the next page (continuations beyond: a scan). */
const PAGE_CURSORS = 64;

/** The retained caps (a subset of config.limits). */
export interface RetainedLimits {
  readonly maxRetained: number;
  readonly maxRetainedBytes: number;
  readonly maxRetainedPerClient: number;
}

const UNLIMITED: RetainedLimits = {
  maxRetained: Infinity,
  maxRetainedBytes: Infinity,
  maxRetainedPerClient: Infinity,
};

export interface RetainedOptions {
  readonly limits?: RetainedLimits;
  /** Called when `set()` refuses an entry over a total cap (the caller did not `admit()` it first). */
  readonly onRefused?: (reason: string) => void;
}

/** Input of `set()`: an entry without the fields the store derives. */
export type RetainedInput = Omit<RetainedEntry, 'modifiedAt' | 'owner' | 'bytes' | 'seq'> & {
  readonly owner?: string | null;
};

export class RetainedStore {
  private readonly map = new Map<string, RetainedEntry>();
  private readonly index = new TopicIndex<RetainedEntry>();
  private readonly owners = new Map<string, number>();
  private totalBytes = 0;
  private lastSeq = 0;
  /** Live map iterators of recent pages, by the position they stopped at (oldest first). */
  private readonly cursors = new Map<number, Iterator<RetainedEntry>>();
  private readonly limits: RetainedLimits;
  private readonly onRefused: (reason: string) => void;

  constructor(
    private readonly persist: (op: StoreOp) => void,
    options: RetainedOptions = {},
  ) {
    this.limits = options.limits ?? UNLIMITED;
    this.onRefused = options.onRefused ?? (() => undefined);
  }

  get size(): number {
    return this.map.size;
  }

  /** Bytes held (payload + topic of every entry), for the gauge and the total-bytes cap. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Entries owned by `clientId`. */
  ownedBy(clientId: string): number {
    return this.owners.get(clientId) ?? 0;
  }

  load(rows: readonly StoredRetained[]): void {
    for (const r of rows) {
      this.put({
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        properties: r.properties,
        expiresAt: r.expiresAt,
        modifiedAt: r.modifiedAt,
        owner: r.owner ?? null,
        bytes: entryBytes(r.topic, r.payload.length),
        seq: this.map.get(r.topic)?.seq ?? ++this.lastSeq,
      });
    }
  }

  /**
   * May `clientId` retain `payloadBytes` on `topic` now? Null when yes, else the reason (a v5 reason string
   * for 0x97 Quota exceeded). `clientId` null: the platform's own publish, exempt from the per-client cap
   * but not from the totals. An empty payload (a clear) is always admitted. Synchronous, O(1).
   * @example const why = core.retained.admit(conn.clientId, topic, payload.length); if (why) refuse(0x97, why);
   */
  admit(clientId: string | null, topic: string, payloadBytes: number): string | null {
    if (payloadBytes === 0) return null;
    const old = this.map.get(topic);
    const l = this.limits;
    if (old === undefined && this.map.size >= l.maxRetained)
      return `retained message quota exceeded (${l.maxRetained} in total)`;
    const grow = entryBytes(topic, payloadBytes) - (old?.bytes ?? 0);
    if (grow > 0 && this.totalBytes + grow > l.maxRetainedBytes)
      return `retained message quota exceeded (${l.maxRetainedBytes} bytes in total)`;
    if (clientId !== null && old?.owner !== clientId && this.ownedBy(clientId) >= l.maxRetainedPerClient)
      return `retained message quota exceeded (${l.maxRetainedPerClient} per client)`;
    return null;
  }

  /**
   * Store or clear (empty payload). Takes shared ownership of the payload Buffer (never mutated).
   * Returns false when the entry was refused over a total cap (counted through `onRefused`).
   */
  set(input: RetainedInput): boolean {
    if (input.payload.length === 0) {
      if (this.remove(input.topic)) this.persist({ op: 'unretain', topic: input.topic });
      return true;
    }
    const why = this.admit(null, input.topic, input.payload.length);
    if (why !== null) {
      this.onRefused(why);
      return false;
    }
    const stored: RetainedEntry = {
      topic: input.topic,
      payload: input.payload,
      qos: input.qos,
      properties: input.properties,
      expiresAt: input.expiresAt,
      modifiedAt: Date.now(),
      owner: input.owner ?? null,
      bytes: entryBytes(input.topic, input.payload.length),
      seq: this.map.get(input.topic)?.seq ?? ++this.lastSeq,
    };
    this.put(stored);
    this.persist({ op: 'retain', message: { ...stored, retain: true } });
    return true;
  }

  /**
   * Cluster: another node set (or, with an empty payload, cleared) this retained message and stored it; keep
   * this node's copy current without writing it again. Not refused: the node that stored it admitted it.
   */
  mirror(row: StoredRetained): void {
    if (row.payload.length === 0) {
      this.remove(row.topic);
      return;
    }
    this.put({
      topic: row.topic,
      payload: row.payload,
      qos: row.qos,
      properties: row.properties,
      expiresAt: row.expiresAt,
      modifiedAt: row.modifiedAt,
      owner: row.owner ?? null,
      bytes: entryBytes(row.topic, row.payload.length),
      seq: this.map.get(row.topic)?.seq ?? ++this.lastSeq,
    });
  }

  get(topic: string, now = Date.now()): RetainedEntry | undefined {
    const e = this.map.get(topic);
    if (e && e.expiresAt !== null && e.expiresAt <= now) {
      this.remove(topic);
      this.persist({ op: 'unretain', topic });
      return undefined;
    }
    return e;
  }

  /** Entries whose topic matches `filter`, expired ones removed on the way (unbounded; see `cursor()`). */
  match(filter: string, now = Date.now()): RetainedEntry[] {
    const out: RetainedEntry[] = [];
    const c = this.cursor(filter);
    while (!c.take(out, Infinity, Infinity, now));
    return out;
  }

  /** A resumable lookup for `filter`, for replays spread over event-loop turns (see retained-replay.ts). */
  cursor(filter: string): RetainedCursor {
    return new RetainedCursor(this, filter, isWildcard(filter) ? this.index.cursor(filter) : null);
  }

  /** Every live entry (the data plane's ListRetainedMessages). */
  all(now = Date.now()): RetainedEntry[] {
    const out: RetainedEntry[] = [];
    for (const e of [...this.map.values()]) {
      if (e.expiresAt !== null && e.expiresAt <= now) this.get(e.topic, now);
      else out.push(e);
    }
    return out;
  }

  /**
   * Up to `limit` live entries after listing position `after` (0: from the start), in listing order (first
   * retained first; see RetainedEntry.seq), and where to continue. Nothing is copied: continuing from the
   * position the previous page returned resumes that page's live iterator (O(limit)); any other position is
   * found by walking the entries before it. An entry retained while a listing is under way is listed once,
   * at the end; one cleared before the listing reaches it is not listed. Expired entries are removed.
   * @example let p = store.page(0, 100); while (p.next !== null) p = store.page(p.next, 100);
   */
  page(after: number, limit: number, now = Date.now()): RetainedPage {
    let it = this.cursors.get(after);
    this.cursors.delete(after);
    it ??= this.map.values();
    const entries: RetainedEntry[] = [];
    let last = after;
    while (entries.length < limit) {
      const r = it.next();
      if (r.done) return { entries, next: null };
      const e = r.value;
      if (e.seq <= after) continue;
      if (e.expiresAt !== null && e.expiresAt <= now) {
        this.get(e.topic, now);
        continue;
      }
      entries.push(e);
      last = e.seq;
    }
    if (this.cursors.size >= PAGE_CURSORS) this.cursors.delete(this.cursors.keys().next().value!);
    this.cursors.set(last, it);
    return { entries, next: last };
  }

  private put(e: RetainedEntry): void {
    const old = this.map.get(e.topic);
    this.map.set(e.topic, e);
    this.index.set(e.topic, e);
    this.totalBytes += e.bytes - (old?.bytes ?? 0);
    if (old?.owner !== e.owner) {
      if (old) this.release(old.owner);
      if (e.owner !== null) this.owners.set(e.owner, this.ownedBy(e.owner) + 1);
    }
  }

  private remove(topic: string): boolean {
    const old = this.map.get(topic);
    if (!old) return false;
    this.map.delete(topic);
    this.index.delete(topic);
    this.totalBytes -= old.bytes;
    this.release(old.owner);
    return true;
  }

  private release(owner: string | null): void {
    if (owner === null) return;
    const n = this.ownedBy(owner);
    if (n <= 1) this.owners.delete(owner);
    else this.owners.set(owner, n - 1);
  }
}

/** A retained lookup that yields in bounded steps; expired entries are removed instead of yielded. */
export class RetainedCursor {
  private exactDone = false;
  private readonly buf: RetainedEntry[] = [];

  constructor(
    private readonly store: RetainedStore,
    private readonly filter: string,
    private readonly inner: IndexCursor<RetainedEntry> | null,
  ) {}

  /**
   * Append up to `maxEntries` live matches to `out`, visiting at most about `maxSteps` trie nodes.
   * Returns true when the lookup is complete.
   */
  take(out: RetainedEntry[], maxEntries: number, maxSteps: number, now = Date.now()): boolean {
    if (this.inner === null) {
      if (!this.exactDone) {
        this.exactDone = true;
        const e = this.store.get(this.filter, now);
        if (e) out.push(e);
      }
      return true;
    }
    const buf = this.buf;
    buf.length = 0;
    const done = this.inner.take(buf, maxEntries, maxSteps);
    for (const e of buf) {
      if (e.expiresAt !== null && e.expiresAt <= now) this.store.get(e.topic, now);
      else out.push(e);
    }
    buf.length = 0;
    return done;
  }
}

function isWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

function entryBytes(topic: string, payloadBytes: number): number {
  return payloadBytes + Buffer.byteLength(topic);
}
