import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database, type PostgresDatabase } from '../store/index.js';
import {
  createLocalChannel,
  createPostgresChannel,
  type ChangeChannel,
  type ChangeEvent,
  type ChangeOrigin,
} from './index.js';
import { channelName } from './postgres.js';

/**
 * One contract, two channels: in-process and PostgreSQL LISTEN/NOTIFY. The PostgreSQL run adds what only
 * a cross-process channel has: a second process (a second channel on its own connection pool) receives
 * the events as `remote`, in order, and `resync` after its listener connection was lost.
 */

const pgUp = await postgresAvailable('PostgreSQL change channel contract');

interface Harness {
  open(onError?: (err: unknown) => void): Promise<ChangeChannel>;
  /** A second process sharing the database; null where the channel is single-process. */
  peer: (() => Promise<ChangeChannel>) | null;
  close(): Promise<void>;
  killListeners?(): Promise<void>;
}

async function localHarness(): Promise<Harness> {
  return { open: async (onError) => createLocalChannel({ onError }), peer: null, close: async () => {} };
}

async function pgHarness(): Promise<Harness> {
  const schema = await freshSchema('events');
  const dbs: Database[] = [];
  const open = async (onError?: (err: unknown) => void) => {
    const db = (await openDatabase({ dataDir: '/nonexistent', databaseUrl: schema.url })) as PostgresDatabase;
    dbs.push(db);
    return createPostgresChannel({ db, onError, reconnectMs: 20 });
  };
  return {
    open,
    peer: () => open(),
    async killListeners() {
      await dbs[0]!.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1', [
        `LISTEN ${channelName(schema.schema)}`,
      ]);
    },
    async close() {
      for (const db of dbs) await db.close();
      await schema.drop();
    },
  };
}

const harnesses: Array<[string, () => Promise<Harness>, boolean]> = [
  ['in-process', localHarness, true],
  ['PostgreSQL LISTEN/NOTIFY', pgHarness, pgUp],
];

async function until(check: () => boolean, ms = 3000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe.each(harnesses)('change channel contract: %s', (_name, make, available) => {
  let h: Harness;
  const channels: ChangeChannel[] = [];
  const open = async (onError?: (err: unknown) => void) => {
    const c = await h.open(onError);
    channels.push(c);
    return c;
  };
  beforeAll(async () => {
    if (available) h = await make();
  });
  afterAll(async () => {
    for (const c of channels) await c.close();
    await h?.close();
  });

  it('delivers a published event to the subscribers of its kind, after they ran, as local', async (ctx) => {
    if (!available) return ctx.skip();
    const ch = await open();
    const got: Array<[ChangeEvent, ChangeOrigin]> = [];
    const other: ChangeEvent[] = [];
    let slowDone = false;
    ch.subscribe(['thing', 'membership'], async (e, o) => {
      await new Promise((r) => setTimeout(r, 5));
      slowDone = true;
      got.push([e, o]);
    });
    ch.subscribe(['policy'], (e) => void other.push(e));
    await ch.publish({ kind: 'thing', name: 'dev1' });
    expect(slowDone).toBe(true); // publish resolved after the async subscriber settled
    await ch.publish({ kind: 'membership', thing: 'dev1', group: 'lab' });
    expect(got).toEqual([
      [{ kind: 'thing', name: 'dev1' }, 'local'],
      [{ kind: 'membership', thing: 'dev1', group: 'lab' }, 'local'],
    ]);
    expect(other).toEqual([]);
  });

  it('unsubscribe stops delivery; a failing subscriber is reported and does not stop the others', async (ctx) => {
    if (!available) return ctx.skip();
    const errors: unknown[] = [];
    const ch = await open((err) => errors.push(err));
    const got: string[] = [];
    ch.subscribe(['rule'], () => {
      throw new Error('boom');
    });
    ch.subscribe(['rule'], async () => Promise.reject(new Error('async boom')));
    const off = ch.subscribe(['rule'], (e) => void got.push(e.kind === 'rule' ? e.name : ''));
    await ch.publish({ kind: 'rule', name: 'r1' });
    off();
    await ch.publish({ kind: 'rule', name: 'r2' });
    expect(got).toEqual(['r1']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom', 'async boom', 'boom', 'async boom']);
  });

  it('refuses an event over the payload limit (send ids, let receivers re-read)', async (ctx) => {
    if (!available) return ctx.skip();
    const ch = await open();
    await expect(ch.publish({ kind: 'thing', name: 'x'.repeat(8000) })).rejects.toBeInstanceOf(TypeError);
  });

  it('keeps publish order for many events', async (ctx) => {
    if (!available) return ctx.skip();
    const ch = await open();
    const got: string[] = [];
    ch.subscribe(['thing'], (e) => void got.push(e.kind === 'thing' ? e.name : ''));
    await Promise.all(Array.from({ length: 50 }, (_, i) => ch.publish({ kind: 'thing', name: `t${i}` })));
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
  });

  it('another process receives the events as remote, in order, without its own echo', async (ctx) => {
    if (!available || !h.peer) return ctx.skip();
    const a = await open();
    const b = await h.peer();
    channels.push(b);
    const atA: string[] = [];
    const atB: Array<[string, ChangeOrigin]> = [];
    a.subscribe(['certificate'], (e) => void atA.push(e.kind === 'certificate' ? e.certificateId : ''));
    b.subscribe(
      ['certificate'],
      (e, o) => void atB.push([e.kind === 'certificate' ? e.certificateId : '', o]),
    );
    const t0 = performance.now();
    await a.publish({ kind: 'certificate', certificateId: 'c0', status: 'REVOKED' });
    await until(() => atB.length === 1, 3000, 'first event at B');
    const latency = performance.now() - t0;
    for (let i = 1; i < 20; i++)
      await a.publish({ kind: 'certificate', certificateId: `c${i}`, status: 'REVOKED' });
    await until(() => atB.length === 20, 3000, 'all events at B');
    expect(atB).toEqual(Array.from({ length: 20 }, (_, i) => [`c${i}`, 'remote']));
    expect(atA).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`)); // once each: no echo
    console.log(`cross-process delivery: ${latency.toFixed(1)} ms`);
    expect(latency).toBeLessThan(1000);
  });

  it('a burst of concurrent events reaches another process complete and in order (batched NOTIFYs)', async (ctx) => {
    if (!available || !h.peer) return ctx.skip();
    const a = await open();
    const b = await h.peer();
    channels.push(b);
    const atB: string[] = [];
    b.subscribe(['shadow'], (e) => void atB.push(e.kind === 'shadow' ? `${e.thing}:${e.version}` : ''));
    const n = 2000;
    // Names of mixed width (and non-ASCII) so batches are cut at the byte limit, not at a count.
    const names = Array.from({ length: n }, (_, i) => `dev-${'é'.repeat(i % 40)}-${i}`);
    const t0 = performance.now();
    await Promise.all(
      names.map((thing, i) => a.publish({ kind: 'shadow', thing, name: '', version: i + 1 })),
    );
    const published = performance.now() - t0;
    await until(() => atB.length === n, 10_000, 'every event at B');
    expect(atB).toEqual(names.map((thing, i) => `${thing}:${i + 1}`));
    console.log(`${n} concurrent events published in ${published.toFixed(0)} ms`);
  });

  it('delivers resync after the listener connection was lost, then events again', async (ctx) => {
    if (!available || !h.peer || !h.killListeners) return ctx.skip();
    const a = await open();
    const b = await h.peer();
    channels.push(b);
    const atB: string[] = [];
    b.subscribe(['rule'], (e) => void atB.push(e.kind === 'rule' ? e.name : e.kind));
    await h.killListeners();
    await until(() => atB.includes('resync'), 5000, 'resync at B');
    await a.publish({ kind: 'rule', name: 'after' });
    await until(() => atB.includes('after'), 3000, 'event after reconnect');
  });
});
