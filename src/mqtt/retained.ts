/**
 * Retained messages [MQTT-3.3.1-5..8]: one per topic, held in memory and persisted through the store batch.
 * A retained PUBLISH with an empty payload clears the topic [MQTT-3.3.1-10, MQTT-3.3.1-11]. Entries with
 * a Message Expiry Interval disappear when it passes [MQTT-3.3.2-5].
 */
import type { StoreOp, StoredRetained } from './store.js';
import type { PublishProperties } from './types.js';
import { topicMatches } from './topics.js';

export interface RetainedEntry {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly properties: PublishProperties | undefined;
  readonly expiresAt: number | null;
  readonly modifiedAt: number;
}

export class RetainedStore {
  private readonly map = new Map<string, RetainedEntry>();

  constructor(private readonly persist: (op: StoreOp) => void) {}

  get size(): number {
    return this.map.size;
  }

  load(rows: readonly StoredRetained[]): void {
    for (const r of rows) {
      this.map.set(r.topic, {
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        properties: r.properties,
        expiresAt: r.expiresAt,
        modifiedAt: r.modifiedAt,
      });
    }
  }

  /** Store or clear (empty payload). Takes shared ownership of the payload Buffer (never mutated). */
  set(entry: Omit<RetainedEntry, 'modifiedAt'>): void {
    if (entry.payload.length === 0) {
      if (this.map.delete(entry.topic)) this.persist({ op: 'unretain', topic: entry.topic });
      return;
    }
    const stored: RetainedEntry = { ...entry, modifiedAt: Date.now() };
    this.map.set(entry.topic, stored);
    this.persist({ op: 'retain', message: { ...stored, retain: true } });
  }

  get(topic: string, now = Date.now()): RetainedEntry | undefined {
    const e = this.map.get(topic);
    if (e && e.expiresAt !== null && e.expiresAt <= now) {
      this.map.delete(topic);
      this.persist({ op: 'unretain', topic });
      return undefined;
    }
    return e;
  }

  /** Entries whose topic matches `filter`, expired ones removed on the way. */
  match(filter: string, now = Date.now()): RetainedEntry[] {
    if (!filter.includes('+') && !filter.includes('#')) {
      const e = this.get(filter, now);
      return e ? [e] : [];
    }
    const out: RetainedEntry[] = [];
    for (const e of this.map.values()) {
      if (!topicMatches(filter, e.topic)) continue;
      if (e.expiresAt !== null && e.expiresAt <= now) {
        this.get(e.topic, now);
        continue;
      }
      out.push(e);
    }
    return out;
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
}
