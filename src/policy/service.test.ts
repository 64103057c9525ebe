import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../store/index.js';
import { bindPolicies, openPolicyService, type PolicyService } from './index.js';

const scope = { region: 'us-east-1', accountId: '123456789012' };
const A = 'arn:aws:iot:us-east-1:123456789012';
const CERT = `${A}:cert/${'a'.repeat(64)}`;
const GROUP = `${A}:thinggroup/g1`;
const doc = (resource: string, effect = 'Allow') =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: effect, Action: 'iot:Publish', Resource: resource }],
  });

async function pgDb(): Promise<Database | null> {
  const base = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: base });
  try {
    await client.connect();
  } catch {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL not reachable at ${base}`);
    console.warn(`SKIP PostgreSQL policy store tests: ${base} not reachable`);
    return null;
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  return openDatabase({ dataDir: tmpdir(), databaseUrl: `${base}?options=-c%20search_path%3D${schema}` });
}

describe.each([
  ['sqlite', () => openDatabase({ dataDir: tmpdir(), databaseUrl: null, file: ':memory:' })],
  ['postgres', pgDb],
] as const)('policy service on %s (reference §3.3, §3.12)', (_name, open) => {
  let db: Database | null;
  let svc: PolicyService;
  beforeAll(async () => {
    db = await open();
    if (db) svc = await openPolicyService({ db, scope });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('CreatePolicy makes version 1 the default; duplicates and bad documents are refused', async (ctx) => {
    if (!db) return ctx.skip();
    const p = await svc.createPolicy('p1', doc(`${A}:topic/a`));
    expect(p.versionId).toBe('1');
    expect(svc.getPolicy('p1').defaultVersionId).toBe('1');
    await expect(svc.createPolicy('p1', doc('*'))).rejects.toMatchObject({
      name: 'ResourceAlreadyExistsException',
    });
    await expect(svc.createPolicy('bad', '{"Statement":[{"Effect":"Allow"}]}')).rejects.toMatchObject({
      name: 'MalformedPolicyException',
      message: expect.stringMatching(/^Statement\[0\]/),
    });
    await expect(svc.createPolicy('obj', { Statement: [] })).rejects.toMatchObject({
      message: expect.stringMatching(/json\.dumps/),
    });
    await expect(svc.createPolicy('bad name!', doc('*'))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
    expect(() => svc.getPolicy('nope')).toThrow(/not found/);
  });

  it('versions: at most 5, setAsDefault, default cannot be deleted, only the default is enforced', async (ctx) => {
    if (!db) return ctx.skip();
    await svc.createPolicy('v', doc(`${A}:topic/v1`));
    await svc.attachPolicy('v', CERT);
    const g0 = svc.generation;
    for (let n = 2; n <= 5; n++) await svc.createPolicyVersion('v', doc(`${A}:topic/v${n}`), false);
    expect(svc.generation).toBe(g0); // non-default versions change no decision
    await expect(svc.createPolicyVersion('v', doc('*'), true)).rejects.toMatchObject({
      name: 'VersionsLimitExceededException',
    });
    const allowed = (t: string) =>
      bindPolicies(svc.policiesFor([CERT]), {}).allowed('iot:Publish', `${A}:topic/${t}`);
    expect(allowed('v1')).toBe(true);
    expect(allowed('v3')).toBe(false);
    await svc.setDefaultPolicyVersion('v', '3');
    expect(svc.generation).toBeGreaterThan(g0);
    expect(allowed('v1')).toBe(false);
    expect(allowed('v3')).toBe(true);
    await expect(svc.deletePolicyVersion('v', '3')).rejects.toMatchObject({
      name: 'DeleteConflictException',
    });
    await svc.deletePolicyVersion('v', '1');
    const v6 = await svc.createPolicyVersion('v', doc(`${A}:topic/v6`), true);
    expect(v6.versionId).toBe('6'); // version ids are never reused
    expect(svc.listPolicyVersions('v').map((x) => x.versionId)).toEqual(['6', '5', '4', '3', '2']);
    expect(svc.listPolicyVersions('v').find((x) => x.isDefaultVersion)?.versionId).toBe('6');
    // state survives a reload from the store
    await svc.reload();
    expect(svc.getPolicy('v').defaultVersionId).toBe('6');
    expect(allowed('v6')).toBe(true);
  });

  it('attachments: targets, limits, DeletePolicy conflicts, thing ARNs refused with a hint', async (ctx) => {
    if (!db) return ctx.skip();
    await svc.createPolicy('g', doc(`${A}:topic/g`));
    await svc.attachPolicy('g', GROUP);
    await svc.attachPolicy('g', GROUP); // idempotent
    expect(svc.policiesOf(GROUP)).toEqual(['g']);
    expect(svc.targetsOf('g')).toEqual([GROUP]);
    await expect(svc.attachPolicy('g', `${A}:thing/MyDevice`)).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: expect.stringMatching(/certificate ARN/),
    });
    await expect(svc.attachPolicy('nope', GROUP)).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(svc.deletePolicy('g')).rejects.toMatchObject({ name: 'DeleteConflictException' });
    await svc.detachPolicy('g', GROUP);
    expect(svc.policiesOf(GROUP)).toEqual([]);
    await svc.deletePolicy('g');
    expect(svc.compiled('g')).toBeUndefined();
    // 10 per target
    const t = `${A}:cert/${'b'.repeat(64)}`;
    for (let n = 0; n < 10; n++) {
      await svc.createPolicy(`lim${n}`, doc('*'));
      await svc.attachPolicy(`lim${n}`, t);
    }
    await svc.createPolicy('lim10', doc('*'));
    await expect(svc.attachPolicy('lim10', t)).rejects.toMatchObject({ name: 'LimitExceededException' });
    // policies of several targets are deduplicated, in order
    await svc.attachPolicy('lim0', GROUP);
    expect(
      svc
        .policiesFor([GROUP, t])
        .map((p) => p.name)
        .slice(0, 2),
    ).toEqual(['lim0', 'lim1']);
  });

  it("targets are canonical: upper-case ids and foreign account ARNs attach to this platform's certificate", async (ctx) => {
    if (!db) return ctx.skip();
    await svc.createPolicy('canon', doc('*'));
    const id = 'C'.repeat(64);
    await svc.attachPolicy('canon', `arn:aws:iot:eu-west-1:999999999999:cert/${id}`);
    expect(svc.policiesOf(`${A}:cert/${id.toLowerCase()}`)).toEqual(['canon']);
    expect(svc.policiesFor([`${A}:cert/${id.toLowerCase()}`]).map((p) => p.name)).toEqual(['canon']);
    await svc.detachPolicy('canon', `${A}:cert/${id}`);
    expect(svc.policiesOf(`${A}:cert/${id.toLowerCase()}`)).toEqual([]);
  });

  it('lists policies with markers', async (ctx) => {
    if (!db) return ctx.skip();
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const page = svc.listPolicies({ pageSize: 3, marker });
      names.push(...page.policies.map((p) => p.policyName));
      marker = page.nextMarker;
    } while (marker);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(svc.listPolicies().policies.length);
  });
});
