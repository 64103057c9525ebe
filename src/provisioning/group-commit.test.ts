import { describe, expect, it } from 'vitest';
import { openDatabase } from '../store/index.js';
import { openFlowsStore } from './flows-store.js';
import { groupCommit, valuesList } from './group-commit.js';

describe('group commit of journal rows', () => {
  it('writes the calls of one turn together, resolving each only after its write', async () => {
    const writes: string[][] = [];
    const add = groupCommit<string>(async (items) => {
      await new Promise((r) => setTimeout(r, 5));
      writes.push([...items]);
    }, 3);
    const done: string[] = [];
    await Promise.all(['a', 'b', 'c', 'd'].map((x) => add(x).then(() => done.push(x))));
    expect(writes).toEqual([['a', 'b', 'c'], ['d']]);
    expect(done.sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a bad row fails only its own caller', async () => {
    const stored: number[] = [];
    const add = groupCommit<number>(async (items) => {
      if (items.includes(2)) throw new Error('bad row');
      stored.push(...items);
    }, 10);
    const results = await Promise.allSettled([1, 2, 3].map((n) => add(n)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(stored.sort()).toEqual([1, 3]);
  });

  it('placeholders for multi-row VALUES', () => {
    expect(valuesList(2, 3)).toBe('($1, $2, $3), ($4, $5, $6)');
    expect(valuesList(1, 2)).toBe('($1, $2)');
  });

  it('concurrent journal inserts and deletes on the real store: each row stored, then each gone', async () => {
    const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
    const store = await openFlowsStore(db);
    const ids = Array.from({ length: 250 }, (_, i) => `attempt-${i}`);
    await Promise.all(
      ids.map((attemptId) =>
        store.insertJournal({ attemptId, flow: 'bulk:t', createdAt: 1, undo: '{"undo":[]}' }, 10),
      ),
    );
    expect((await store.journalIds()).map((j) => j.attemptId).sort()).toEqual([...ids].sort());
    // A duplicate in a group fails alone; the others of its group are stored.
    const again = await Promise.allSettled(
      ['attempt-0', 'fresh-1', 'fresh-2'].map((attemptId) =>
        store.insertJournal({ attemptId, flow: 'bulk:t', createdAt: 1, undo: '{}' }, 10),
      ),
    );
    expect(again.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    await Promise.all([...ids, 'fresh-1', 'fresh-2'].map((id) => store.deleteJournal(id)));
    expect(await store.journalIds()).toEqual([]);
    await db.close();
  });
});
