import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateThingCommand, DeleteThingCommand, IoTClient, SearchIndexCommand } from '@aws-sdk/client-iot';
import {
  GetThingShadowCommand,
  IoTDataPlaneClient,
  ListNamedShadowsForThingCommand,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Two writers on one shadow (issue 10: "two concurrent writers with stale versions get 409 and nothing is
 * lost"): two platforms, as two processes of a cluster, on one fresh PostgreSQL schema, driven through
 * `@aws-sdk/client-iot-data-plane` on each one's HTTP port.
 * - many concurrent updates without `version` on both: every one lands exactly once (the accepted versions
 *   are 1..N with no repeat, the final version is N, every field written is there);
 * - concurrent updates with the same `version` on both: exactly one is accepted, the other is 409, and
 *   nothing accepted is lost;
 * - a get on B right after an update on A answers it (B's cached copy is dropped by the `shadow` change
 *   event over LISTEN/NOTIFY, or re-read);
 * - a thing deleted on A takes its shadows along on both.
 * Skipped visibly without PostgreSQL; fails under CI=true.
 */

const havePg = await postgresAvailable('shadow cluster test');

describe.skipIf(!havePg)('two platforms writing the same shadows (PostgreSQL)', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let dataDir: string;
  let a: TestPlatform;
  let b: TestPlatform;
  let dataA: IoTDataPlaneClient;
  let dataB: IoTDataPlaneClient;
  let iotA: IoTClient;
  let iotB: IoTClient;
  const figures: string[] = [];

  beforeAll(async () => {
    schema = await freshSchema('shadow');
    dataDir = mkdtempSync(join(tmpdir(), 'shadow-cluster-'));
    const config = { databaseUrl: schema.url, shadow: { maxUpdatesPerSecondPerThing: 0 } };
    a = await startTestPlatform(config, { dataDir });
    b = await startTestPlatform(config, { dataDir });
    const credentials = await a.credentials.create('shadow-cluster', 'admin');
    const client = (p: TestPlatform) => ({
      endpoint: p.endpoints.http,
      region: p.config.region,
      credentials,
      maxAttempts: 1,
    });
    dataA = new IoTDataPlaneClient(client(a));
    dataB = new IoTDataPlaneClient(client(b));
    iotA = new IoTClient(client(a));
    iotB = new IoTClient(client(b));
  });
  afterAll(async () => {
    if (figures.length)
      console.log(`shadow cluster (${process.arch}, Node ${process.version}):\n  ${figures.join('\n  ')}`);
    for (const c of [dataA, dataB, iotA, iotB]) c?.destroy();
    await a?.stop();
    await b?.stop();
    await schema?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const dec = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b));
  const update = (c: IoTDataPlaneClient, thingName: string, body: unknown, shadowName?: string) =>
    c
      .send(
        new UpdateThingShadowCommand({
          thingName,
          ...(shadowName ? { shadowName } : {}),
          payload: enc(body),
        }),
      )
      .then((r) => dec(r.payload));
  const get = (c: IoTDataPlaneClient, thingName: string, shadowName?: string) =>
    c
      .send(new GetThingShadowCommand({ thingName, ...(shadowName ? { shadowName } : {}) }))
      .then((r) => dec(r.payload));
  const conflicts = async () =>
    (await scrapeMetric(a, 'thingstead_shadow_write_conflicts_total')) +
    (await scrapeMetric(b, 'thingstead_shadow_write_conflicts_total'));

  test('many concurrent updates without versions on both: each lands exactly once', async () => {
    const perSide = 60;
    const before = await conflicts();
    const t0 = performance.now();
    const sides = [
      ['A', dataA],
      ['B', dataB],
    ] as const;
    const results = await Promise.all(
      sides.flatMap(([side, c]) =>
        Array.from({ length: perSide }, (_, i) =>
          update(c, 'shared-1', { state: { reported: { [`${side}${i}`]: i } } }),
        ),
      ),
    );
    const ms = performance.now() - t0;
    const total = 2 * perSide;
    expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    for (const c of [dataA, dataB]) {
      const doc = await get(c, 'shared-1');
      expect(doc.version).toBe(total);
      const fields = Object.keys(doc.state.reported);
      expect(fields).toHaveLength(total);
      for (const [side] of sides)
        for (let i = 0; i < perSide; i++) expect(doc.state.reported[`${side}${i}`], `${side}${i}`).toBe(i);
    }
    const retried = (await conflicts()) - before;
    figures.push(
      `${total} concurrent unversioned updates on one shadow from 2 platforms: ${ms.toFixed(0)} ms ` +
        `(${((total / ms) * 1000).toFixed(0)}/s), ${retried} optimistic re-applies`,
    );
  });

  test('updates with the same version on A and B: one is accepted, the other is 409, nothing is lost', async () => {
    const rounds = 20;
    let version = (await update(dataA, 'shared-2', { state: { reported: { start: true } } }))
      .version as number;
    const won: string[] = [];
    let refused = 0;
    for (let r = 0; r < rounds; r++) {
      // Both read the same version, then both write with it.
      const [ga, gb] = await Promise.all([get(dataA, 'shared-2'), get(dataB, 'shared-2')]);
      expect([ga.version, gb.version]).toEqual([version, version]);
      const outcomes = await Promise.allSettled([
        update(dataA, 'shared-2', { state: { reported: { [`a${r}`]: r } }, version }),
        update(dataB, 'shared-2', { state: { reported: { [`b${r}`]: r } }, version }),
      ]);
      const ok = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i === 0 ? `a${r}` : `b${r}`] : []));
      const failed = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
      expect(ok, `round ${r}`).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ name: 'ConflictException', message: 'Version conflict' });
      expect((failed[0] as any).$metadata.httpStatusCode).toBe(409);
      won.push(ok[0]!);
      refused++;
      version++;
    }
    const doc = await get(dataB, 'shared-2');
    expect(doc.version).toBe(version);
    expect(Object.keys(doc.state.reported).sort()).toEqual(['start', ...won].sort());
    figures.push(
      `${rounds} rounds of same-version writes: ${refused} 409s, winners A ${won.filter((w) => w.startsWith('a')).length} / B ${won.filter((w) => w.startsWith('b')).length}`,
    );
  });

  test('a get on B right after an update on A sees it (cross-process cache invalidation)', async () => {
    await iotA.send(new CreateThingCommand({ thingName: 'shared-3' }));
    // B holds the shadow in its cache first.
    await update(dataA, 'shared-3', { state: { desired: { n: 0 } } });
    expect((await get(dataB, 'shared-3')).state.desired).toEqual({ n: 0 });
    for (let i = 1; i <= 30; i++) {
      const accepted = await update(dataA, 'shared-3', { state: { desired: { n: i } } });
      const seen = await get(dataB, 'shared-3');
      expect({ version: seen.version, n: seen.state.desired.n }, `update ${i}`).toEqual({
        version: accepted.version,
        n: i,
      });
      // And the other way round, on a named shadow.
      const named = await update(dataB, 'shared-3', { state: { reported: { i } } }, 'cfg');
      expect((await get(dataA, 'shared-3', 'cfg')).version, `named ${i}`).toBe(named.version);
    }
    // B's fleet index follows A's writes through the same change events.
    await waitFor(
      async () =>
        (
          await iotB.send(
            new SearchIndexCommand({ queryString: 'shadow.desired.n:30 AND shadow.name.cfg.reported.i:30' }),
          )
        ).things?.length === 1,
      5000,
      "B's fleet index has A's last update",
    );
  });

  test('a thing deleted on A removes its shadows on both', async () => {
    await iotA.send(new CreateThingCommand({ thingName: 'doomed' }));
    await update(dataB, 'doomed', { state: { reported: { on: true } } });
    await update(dataB, 'doomed', { state: { reported: { fw: '1' } } }, 'ota');
    await update(dataA, 'doomed', { state: { reported: { x: 1 } } }, 'cfg');
    // Both have it cached and indexed.
    for (const c of [dataA, dataB]) expect((await get(c, 'doomed')).state.reported).toEqual({ on: true });
    await waitFor(async () => {
      const out = await iotB.send(new SearchIndexCommand({ queryString: 'shadow.name.ota.reported.fw:1' }));
      return out.things?.length === 1;
    });

    await iotA.send(new DeleteThingCommand({ thingName: 'doomed' }));
    for (const [side, c] of [
      ['A', dataA],
      ['B', dataB],
    ] as const) {
      await waitFor(
        () =>
          get(c, 'doomed').then(
            () => false,
            (e: Error) => e.name === 'ResourceNotFoundException',
          ),
        5000,
        `classic shadow gone on ${side}`,
      );
      for (const name of ['ota', 'cfg'])
        await expect(get(c, 'doomed', name)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
      expect((await c.send(new ListNamedShadowsForThingCommand({ thingName: 'doomed' }))).results).toEqual(
        [],
      );
    }
    // No row is left, tombstones included: a new thing of that name starts again at version 1.
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    try {
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE '%shadow%'",
        [schema.schema],
      );
      expect(tables.rows.length).toBeGreaterThan(0);
      for (const { table_name } of tables.rows) {
        const cols = await client.query<{ column_name: string }>(
          'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
          [schema.schema, table_name],
        );
        const thingCol = cols.rows.map((r) => r.column_name).find((c) => c === 'thing_name' || c === 'thing');
        if (!thingCol) continue;
        const left = await client.query(
          `SELECT count(*)::int AS n FROM ${table_name} WHERE ${thingCol} = $1`,
          ['doomed'],
        );
        expect(left.rows[0].n, table_name).toBe(0);
      }
    } finally {
      await client.end();
    }
    await iotB.send(new CreateThingCommand({ thingName: 'doomed' }));
    expect((await update(dataB, 'doomed', { state: { reported: { on: false } } })).version).toBe(1);
    const out = await iotA.send(new SearchIndexCommand({ queryString: 'shadow.name.ota.reported.fw:1' }));
    expect(out.things).toEqual([]);
  });
});
