import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openDatabase, type Database } from '../../src/store/index.js';
import { openTagStore, type TagStore } from '../../src/tags/index.js';
import { freshPgSchema, postgresUrl } from './harness.js';

/**
 * The tag store contract (src/tags/store.ts), one suite run against SQLite and PostgreSQL: upsert by key,
 * ascending key order with a keyset cursor, the per-resource limit enforced atomically (a refused put
 * writes nothing, also when two writers race), remove and removeAll per resource.
 */

const pg = await postgresUrl();

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !pg)(`tag store on ${kind}`, () => {
    let db: Database;
    let store: TagStore;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      if (kind === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'thingstead-tags-'));
        db = await openDatabase({ dataDir: dir, databaseUrl: null });
        cleanup = async () => {
          await db.close();
          rmSync(dir, { recursive: true, force: true });
        };
      } else {
        const schema = await freshPgSchema(pg!);
        db = await openDatabase({ dataDir: tmpdir(), databaseUrl: schema.url });
        cleanup = async () => {
          await db.close();
          await schema.drop();
        };
      }
      store = await openTagStore(db);
      await openTagStore(db); // migrations run once
    });
    afterAll(async () => cleanup?.());

    const A = 'arn:aws:iot:us-east-1:000000000000:thinggroup/a';
    const B = 'arn:aws:iot:us-east-1:000000000000:thinggroup/b';

    test('put upserts by key; list is in bytewise key order, per resource; a missing Value stays missing', async () => {
      expect(await store.put(A, [{ Key: 'b', Value: '1' }, { Key: 'B', Value: '2' }, { Key: 'a' }], 50)).toBe(
        true,
      );
      expect(await store.put(A, [{ Key: 'b', Value: 'new' }], 50)).toBe(true);
      expect(await store.put(B, [{ Key: 'only-b', Value: '' }], 50)).toBe(true);
      expect(await store.list(A, { limit: 10 })).toEqual([
        { Key: 'B', Value: '2' },
        { Key: 'a' },
        { Key: 'b', Value: 'new' },
      ]);
      expect(await store.list(B, { limit: 10 })).toEqual([{ Key: 'only-b', Value: '' }]);
    });

    test('keyset pages: after the last key returned, at most limit', async () => {
      expect(await store.list(A, { limit: 2 })).toEqual([{ Key: 'B', Value: '2' }, { Key: 'a' }]);
      expect(await store.list(A, { after: 'a', limit: 2 })).toEqual([{ Key: 'b', Value: 'new' }]);
      expect(await store.list(A, { after: 'b', limit: 2 })).toEqual([]);
    });

    test('a put that would pass the limit writes nothing; updating existing keys at the limit is fine', async () => {
      const C = 'arn:aws:iot:us-east-1:000000000000:policy/c';
      const tags = (n: number, p: string) =>
        Array.from({ length: n }, (_, i) => ({ Key: `${p}${i}`, Value: p }));
      expect(await store.put(C, tags(5, 'k'), 5)).toBe(true);
      expect(await store.put(C, [...tags(5, 'x'), { Key: 'k0', Value: 'changed' }], 5)).toBe(false);
      expect(await store.list(C, { limit: 10 })).toEqual(tags(5, 'k'));
      expect(await store.put(C, [{ Key: 'k0', Value: 'changed' }], 5)).toBe(true);
      expect((await store.list(C, { limit: 1 }))[0]).toEqual({ Key: 'k0', Value: 'changed' });
    });

    test('racing writers cannot pass the limit together', async () => {
      const D = 'arn:aws:iot:us-east-1:000000000000:rule/d';
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.put(
            D,
            [
              { Key: `w${i}a`, Value: '' },
              { Key: `w${i}b`, Value: '' },
            ],
            5,
          ),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(2);
      expect(await store.list(D, { limit: 50 })).toHaveLength(4);
    });

    test('remove takes the given keys (absent ones ignored); removeAll empties one resource only', async () => {
      await store.remove(A, ['a', 'zzz']);
      expect((await store.list(A, { limit: 10 })).map((t) => t.Key)).toEqual(['B', 'b']);
      await store.removeAll(A);
      expect(await store.list(A, { limit: 10 })).toEqual([]);
      expect(await store.list(B, { limit: 10 })).toEqual([{ Key: 'only-b', Value: '' }]);
    });
  });
}
