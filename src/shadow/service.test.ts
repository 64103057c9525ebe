import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLocalChannel } from '../events/index.js';
import { createLogger } from '../observability/index.js';
import { openDatabase, type Database } from '../store/index.js';
import { createShadowService, type ShadowService } from './service.js';
import { createShadowStore } from './store-sql.js';

/**
 * Two shadow services over one store with separate change channels: the worst case of two processes, whose
 * caches are never told about the other's writes. Only the store's conditional writes keep them honest.
 */
describe('two writers whose caches are never invalidated', () => {
  let db: Database;
  let a: ShadowService;
  let b: ShadowService;
  const published: string[] = [];

  beforeAll(async () => {
    db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
    const store = await createShadowStore(db);
    const make = () =>
      createShadowService({
        store,
        publisher: { publish: (topic) => void published.push(topic) },
        events: createLocalChannel(),
        logger: createLogger('silent'),
        limits: { maxUpdatesPerSecondPerThing: 0 },
      });
    a = make();
    b = make();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await db.close();
  });

  test("a delete on A is not undone by B's update from its stale copy of the live shadow", async () => {
    await a.update('t1', '', { reported: { old: 1 } });
    expect((await b.get('t1', '')).version).toBe(1); // B caches version 1
    expect((await a.delete('t1', '')).version).toBe(1);
    const accepted = await b.update('t1', '', { reported: { fresh: true } });
    expect(accepted.version).toBe(2); // the numbering continues after the delete
    const stored = await createShadowStore(db).then((st) => st.get('t1', ''));
    expect(stored!.version).toBe(2);
    expect(JSON.parse(stored!.document!).state).toEqual({ reported: { fresh: true } }); // `old` did not come back
  });

  test("B's update over A's newer version re-applies to A's document instead of overwriting it", async () => {
    await a.update('t2', '', { desired: { x: 1 } });
    await b.get('t2', '');
    await a.update('t2', '', { desired: { y: 2 } });
    const r = await b.update('t2', '', { desired: { z: 3 } });
    expect(r.version).toBe(3);
    const seen = await createShadowStore(db).then((s) => s.get('t2', ''));
    expect(JSON.parse(seen!.document!).state.desired).toEqual({ x: 1, y: 2, z: 3 });
  });
});
