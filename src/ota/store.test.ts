import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database } from '../store/index.js';
import { createOtaStore, type OtaStore, type StreamRecord } from './store.js';

// One contract suite for both engines (CONVENTIONS #5).
async function openSqlite() {
  const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
  return { db, drop: async () => undefined };
}
async function openPostgres() {
  const s = await freshSchema('ota');
  const db = await openDatabase({ dataDir: '', databaseUrl: s.url });
  return { db, drop: () => s.drop() };
}
const pgUp = await postgresAvailable('ota store PostgreSQL contract suite');
const engines = [['sqlite', openSqlite] as const, ...(pgUp ? [['postgres', openPostgres] as const] : [])];

const sha = (c: string) => c.repeat(64);
const stream = (streamId: string, over: Partial<StreamRecord> = {}): StreamRecord => ({
  streamId,
  description: 'd',
  files: [{ fileId: 0, s3Location: { bucket: 'b', key: sha('a') } }],
  roleArn: null,
  tags: [],
  version: 1,
  createdAt: 1000,
  updatedAt: 1000,
  ...over,
});

describe.each(engines)('ota store on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let store: OtaStore;
  beforeAll(async () => {
    ({ db, drop } = await open());
    store = await createOtaStore(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('files: upsert keeps earlier name/version when a re-upload gives none; by name the newest; keyset pages', async () => {
    await store.putFile({ sha256: sha('b'), size: 10, name: 'fw.bin', version: '1.0.0', createdAt: 1 });
    await store.putFile({ sha256: sha('b'), size: 10, name: null, version: null, createdAt: 2 });
    expect(await store.getFile(sha('b'))).toEqual({
      sha256: sha('b'),
      size: 10,
      name: 'fw.bin',
      version: '1.0.0',
      createdAt: 2,
    });
    await store.putFile({
      sha256: sha('c'),
      size: 5_000_000_000,
      name: 'fw.bin',
      version: '1.1.0',
      createdAt: 3,
    });
    expect((await store.fileByName('fw.bin'))?.sha256).toBe(sha('c'));
    expect((await store.getFile(sha('c')))?.size).toBe(5_000_000_000);
    expect((await store.listFiles(undefined, 1)).map((f) => f.sha256)).toEqual([sha('b')]);
    expect((await store.listFiles(sha('b'), 5)).map((f) => f.sha256)).toEqual([sha('c')]);
    expect(await store.deleteFile(sha('c'))).toBe(true);
    expect(await store.deleteFile(sha('c'))).toBe(false);
  });

  it('streams: insert once, conditional update by version, list both orders, delete', async () => {
    expect(await store.insertStream(stream('s1'))).toBe(true);
    expect(await store.insertStream(stream('s1'))).toBe(false);
    expect(
      await store.insertStream(
        stream('s2', { roleArn: 'arn:aws:iam::1:role/r', tags: [{ Key: 'k', Value: 'v' }] }),
      ),
    ).toBe(true);
    expect(await store.getStream('s2')).toMatchObject({
      roleArn: 'arn:aws:iam::1:role/r',
      tags: [{ Key: 'k', Value: 'v' }],
    });
    expect(await store.putStream(stream('s1', { version: 2, description: 'x' }), 1)).toBe(true);
    expect(await store.putStream(stream('s1', { version: 2, description: 'lost' }), 1)).toBe(false);
    expect(await store.getStream('s1')).toMatchObject({ version: 2, description: 'x' });
    expect((await store.listStreams(undefined, 5, true)).map((s) => s.streamId)).toEqual(['s1', 's2']);
    expect((await store.listStreams(undefined, 1, false)).map((s) => s.streamId)).toEqual(['s2']);
    expect((await store.listStreams('s2', 5, false)).map((s) => s.streamId)).toEqual(['s1']);
    expect(await store.deleteStream('s1')).toBe(true);
    expect(await store.getStream('s1')).toBeNull();
  });
});
