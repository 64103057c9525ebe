import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database } from '../store/index.js';
import { createTemplatesStore, type TemplateRecord, type TemplatesStore } from './templates-store.js';

// One contract suite for both engines (CONVENTIONS #5).
async function openSqlite() {
  const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
  return { db, drop: async () => undefined };
}
async function openPostgres() {
  const s = await freshSchema('provtpl');
  const db = await openDatabase({ dataDir: '', databaseUrl: s.url });
  return { db, drop: () => s.drop() };
}
const pgUp = await postgresAvailable('provisioning templates store PostgreSQL contract suite');
const engines = [['sqlite', openSqlite] as const, ...(pgUp ? [['postgres', openPostgres] as const] : [])];

const T0 = 1_800_000_000_000;
const scope = { region: 'us-east-1', accountId: '123456789012' };
const record = (templateName: string, over: Partial<TemplateRecord> = {}): TemplateRecord => ({
  templateName,
  type: 'FLEET_PROVISIONING',
  description: 'd',
  enabled: true,
  provisioningRoleArn: 'arn:aws:iam::123456789012:role/Provisioning',
  preProvisioningHook: null,
  defaultVersionId: 1,
  createdAt: T0,
  updatedAt: T0,
  ...over,
});
const body = (thingName: string) =>
  JSON.stringify({ Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: thingName } } } });

describe.each(engines)('provisioning templates store on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let store: TemplatesStore;
  beforeAll(async () => {
    ({ db, drop } = await open());
    store = await createTemplatesStore(db, scope);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('inserts a template with version 1 as its default, once', async () => {
    expect(await store.insert(record('t1'), body('a'))).toBe(true);
    expect(await store.insert(record('t1', { description: 'other' }), body('b'))).toBe(false);
    const t = await store.get('t1');
    expect(t).toMatchObject({ templateName: 't1', description: 'd', enabled: true, defaultVersionId: 1 });
    expect((await store.getVersion('t1', 1))?.body).toBe(body('a'));
    expect(await store.get('nope')).toBeNull();
  });

  it('serves the default version parsed, with ARN, type and hook, to the flows', async () => {
    await store.insert(
      record('reader', { preProvisioningHook: { targetArn: 'https://h.example/x' } }),
      body('r1'),
    );
    const s = await store.getTemplate('reader');
    expect(s).toMatchObject({
      name: 'reader',
      arn: 'arn:aws:iot:us-east-1:123456789012:provisioningtemplate/reader',
      type: 'FLEET_PROVISIONING',
      enabled: true,
      body: body('r1'),
      preProvisioningHook: { targetArn: 'https://h.example/x' },
      provisioningRoleArn: 'arn:aws:iam::123456789012:role/Provisioning',
    });
    expect(s?.parsed.thingLogicalId).toBe('thing');
    const v2 = await store.addVersion('reader', body('r2'), {
      setAsDefault: true,
      now: T0 + 1,
      maxVersions: 5,
    });
    expect(v2).toEqual({ versionId: 2, isDefault: true });
    expect((await store.getTemplate('reader'))?.body).toBe(body('r2'));
    expect(await store.getTemplate('missing')).toBeUndefined();
  });

  it('numbers versions without reuse, caps them, and never deletes the default', async () => {
    await store.insert(record('v'), body('1'));
    for (let i = 2; i <= 5; i++) {
      expect(
        await store.addVersion('v', body(String(i)), { setAsDefault: false, now: T0 + i, maxVersions: 5 }),
      ).toEqual({
        versionId: i,
        isDefault: false,
      });
    }
    expect(await store.addVersion('v', body('6'), { setAsDefault: false, now: T0, maxVersions: 5 })).toBe(
      'limit',
    );
    expect(await store.deleteVersion('v', 1)).toBe('default');
    expect(await store.deleteVersion('v', 5)).toBe('deleted');
    expect(await store.deleteVersion('v', 5)).toBe('not_found');
    // The next id is 6, not 5 again.
    expect(await store.addVersion('v', body('6'), { setAsDefault: false, now: T0, maxVersions: 5 })).toEqual({
      versionId: 6,
      isDefault: false,
    });
    expect((await store.listVersions('v', { limit: 10 })).map((x) => x.versionId)).toEqual([1, 2, 3, 4, 6]);
    expect((await store.listVersions('v', { after: 3, limit: 1 })).map((x) => x.versionId)).toEqual([4]);
    expect(
      await store.addVersion('absent', body('x'), { setAsDefault: false, now: T0, maxVersions: 5 }),
    ).toBe('not_found');
  });

  it('updates fields, sets a default only to an existing version, removes a hook', async () => {
    await store.insert(
      record('u', { preProvisioningHook: { targetArn: 'https://h/x', payloadVersion: '2020-04-01' } }),
      body('1'),
    );
    await store.addVersion('u', body('2'), { setAsDefault: false, now: T0 + 1, maxVersions: 5 });
    expect(await store.update('u', { defaultVersionId: 9 }, T0 + 2)).toBe('no_version');
    const r = await store.update(
      'u',
      { defaultVersionId: 2, enabled: false, description: 'new', preProvisioningHook: null },
      T0 + 3,
    );
    expect(r).toMatchObject({
      defaultVersionId: 2,
      enabled: false,
      description: 'new',
      preProvisioningHook: null,
      updatedAt: T0 + 3,
    });
    expect(await store.get('u')).toMatchObject({
      defaultVersionId: 2,
      enabled: false,
      preProvisioningHook: null,
      createdAt: T0,
    });
    expect(await store.update('absent', { enabled: true }, T0)).toBe('not_found');
    expect(await store.deleteVersion('u', 2)).toBe('default');
    expect(await store.deleteVersion('u', 1)).toBe('deleted');
  });

  it('lists in name order with a cursor, and deletes a template with its versions', async () => {
    for (const n of ['l-c', 'l-a', 'l-b']) await store.insert(record(n), body(n));
    const all = (await store.list({ limit: 100 }))
      .map((t) => t.templateName)
      .filter((n) => n.startsWith('l-'));
    expect(all).toEqual(['l-a', 'l-b', 'l-c']);
    expect((await store.list({ after: 'l-a', limit: 1 })).map((t) => t.templateName)).toEqual(['l-b']);
    expect(await store.delete('l-b')).toBe(true);
    expect(await store.delete('l-b')).toBe(false);
    expect(await store.getVersion('l-b', 1)).toBeNull();
    // A template created again under the same name starts over at version 1 with its own body.
    expect(await store.insert(record('l-b', { createdAt: T0 + 10 }), body('again'))).toBe(true);
    expect((await store.getTemplate('l-b'))?.body).toBe(body('again'));
  });

  it('two concurrent version creations past the limit: exactly one wins', async () => {
    await store.insert(record('race'), body('1'));
    for (let i = 2; i <= 4; i++)
      await store.addVersion('race', body(String(i)), { setAsDefault: false, now: T0, maxVersions: 5 });
    const results = await Promise.all(
      [1, 2, 3].map((i) =>
        store.addVersion('race', body(`x${i}`), { setAsDefault: false, now: T0, maxVersions: 5 }),
      ),
    );
    expect(results.filter((r) => typeof r === 'object')).toHaveLength(1);
    expect(results.filter((r) => r === 'limit')).toHaveLength(2);
    expect(await store.listVersions('race', { limit: 10 })).toHaveLength(5);
  });
});
