/** RetainedStore.page(): the paged listing behind ListRetainedMessages (no copy of the store). */
import { describe, expect, it } from 'vitest';
import { RetainedStore, type RetainedInput } from './retained.js';

const input = (topic: string, payload = 'x', extra: Partial<RetainedInput> = {}): RetainedInput => ({
  topic,
  payload: Buffer.from(payload),
  qos: 0,
  properties: undefined,
  expiresAt: null,
  ...extra,
});

function listAll(store: RetainedStore, limit: number, between?: (page: number) => void): string[] {
  const out: string[] = [];
  let after = 0;
  for (let page = 0; ; page++) {
    const p = store.page(after, limit);
    out.push(...p.entries.map((e) => e.topic));
    if (p.next === null) return out;
    between?.(page);
    after = p.next;
  }
}

describe('RetainedStore.page', () => {
  it('lists every entry once, in first-retained order; a replaced topic keeps its place', () => {
    const store = new RetainedStore(() => undefined);
    for (let i = 0; i < 10; i++) store.set(input(`t/${i}`));
    store.set(input('t/3', 'replaced'));
    expect(listAll(store, 3)).toEqual(Array.from({ length: 10 }, (_, i) => `t/${i}`));
    expect(listAll(store, 100)).toHaveLength(10);
    expect(store.page(0, 4).entries.map((e) => e.topic)).toEqual(['t/0', 't/1', 't/2', 't/3']);
  });

  it('continues correctly from a position whose iterator is gone (a scan, same order)', () => {
    const store = new RetainedStore(() => undefined);
    for (let i = 0; i < 200; i++) store.set(input(`t/${i}`));
    const first = store.page(0, 10);
    // 100 other listings push the first one's iterator out of the cache.
    for (let i = 0; i < 100; i++) store.page(0, 1);
    const second = store.page(first.next!, 10);
    expect(second.entries.map((e) => e.topic)).toEqual(Array.from({ length: 10 }, (_, i) => `t/${10 + i}`));
    // The same token twice (a client retrying) gives the same page.
    expect(store.page(first.next!, 10).entries.map((e) => e.topic)).toEqual(
      second.entries.map((e) => e.topic),
    );
  });

  it('during a listing: cleared entries are skipped, new and re-retained ones come once at the end', () => {
    const store = new RetainedStore(() => undefined);
    for (let i = 0; i < 6; i++) store.set(input(`t/${i}`));
    const seen = listAll(store, 2, (page) => {
      if (page !== 0) return;
      store.set(input('t/4', '')); // cleared before the listing reaches it
      store.set(input('t/0', '')); // cleared after it was listed, then retained again
      store.set(input('t/0', 'again'));
      store.set(input('t/new'));
    });
    expect(seen).toEqual(['t/0', 't/1', 't/2', 't/3', 't/5', 't/0', 't/new']);
  });

  it('drops expired entries instead of listing them', () => {
    const store = new RetainedStore(() => undefined);
    store.set(input('a'));
    store.set(input('b', 'x', { expiresAt: Date.now() - 1 }));
    store.set(input('c'));
    expect(listAll(store, 10)).toEqual(['a', 'c']);
    expect(store.size).toBe(2);
  });
});
