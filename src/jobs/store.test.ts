import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { migrate, openDatabase, type Database } from '../store/index.js';
import { JOBS_MIGRATIONS } from './migrations.js';
import { createJobsStore, type JobsStore } from './store.js';
import type { ExecutionRecord, JobRecord } from './types.js';

// One contract suite for both engines (CONVENTIONS #5).
async function openSqlite() {
  const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
  return { db, drop: async () => undefined };
}
async function openPostgres() {
  const s = await freshSchema('jobs');
  const db = await openDatabase({ dataDir: '', databaseUrl: s.url });
  return { db, drop: () => s.drop() };
}
const pgUp = await postgresAvailable('jobs store PostgreSQL contract suite');
const engines = [['sqlite', openSqlite] as const, ...(pgUp ? [['postgres', openPostgres] as const] : [])];

const T0 = 1_800_000_000_000;
const job = (jobId: string, over: Partial<JobRecord> = {}): JobRecord => ({
  jobId,
  status: 'IN_PROGRESS',
  targetSelection: 'SNAPSHOT',
  targetCount: 1,
  firstTarget: 'arn:aws:iot:us-east-1:000000000000:thing/t1',
  document: '{"op":"${aws:iot:parameter:op}"}',
  documentSource: null,
  description: 'd',
  config: { timeoutConfig: { inProgressTimeoutInMinutes: 5 }, documentParameters: { op: 'x' } },
  forceCanceled: false,
  reasonCode: null,
  comment: null,
  createdAt: T0,
  updatedAt: T0,
  completedAt: null,
  version: 1,
  rollout: {
    created: 0,
    rate: null,
    windowStart: T0,
    windowCount: 0,
    lastIncrease: { notified: 0, succeeded: 0 },
    exhausted: false,
  },
  ...over,
});
const exec = (jobId: string, thingName: string, over: Partial<ExecutionRecord> = {}): ExecutionRecord => ({
  jobId,
  thingName,
  executionNumber: 1,
  status: 'QUEUED',
  statusDetails: {},
  versionNumber: 1,
  queuedAt: T0,
  startedAt: null,
  lastUpdatedAt: T0,
  stepDeadline: null,
  progressDeadline: null,
  watchdogDeadline: null,
  retryAttempt: 0,
  forceCanceled: false,
  ...over,
});

describe.each(engines)('jobs store contract (%s)', (_kind, open) => {
  let db: Database;
  let store: JobsStore;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ db, drop } = await open());
    store = await createJobsStore(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  const ARN = 'arn:aws:iot:us-east-1:000000000000';
  it('inserts a job once, reads it back whole, lists in id order with a cursor and filters', async () => {
    const arns = [`${ARN}:thing/t1`, `${ARN}:thinggroup/g1`];
    expect(await store.insertJob(job('j1'), arns, ['t1', 't2'])).toBe(true);
    expect(await store.insertJob(job('j1'), [], [])).toBe(false);
    await store.insertJob(
      job('j2', { status: 'CANCELED', targetSelection: 'CONTINUOUS' }),
      [`${ARN}:thinggroup/g2`],
      [],
    );
    await store.insertJob(job('j0'), [], []);
    expect(await store.getJob('j1')).toEqual(job('j1'));
    expect(await store.targetArns('j1')).toEqual(arns);
    expect(await store.getJob('nope')).toBeNull();
    expect((await store.listJobs({ thingGroup: 'g1', limit: 10 })).map((j) => j.jobId)).toEqual(['j1']);
    expect((await store.listJobs({ thingGroup: 't1', limit: 10 })).map((j) => j.jobId)).toEqual([]);
    expect((await store.jobsReaching('t1', [])).sort()).toEqual(['j1']);
    expect((await store.jobsReaching('tx', ['g1', 'g2'])).sort()).toEqual(['j1', 'j2']);
    expect(await store.jobsReaching('tx', ['g3'])).toEqual([]);
    expect((await store.listJobs({ limit: 10 })).map((j) => j.jobId)).toEqual(['j0', 'j1', 'j2']);
    expect((await store.listJobs({ after: 'j0', limit: 1 })).map((j) => j.jobId)).toEqual(['j1']);
    expect((await store.listJobs({ status: 'CANCELED', limit: 10 })).map((j) => j.jobId)).toEqual(['j2']);
    expect((await store.listJobs({ targetSelection: 'CONTINUOUS', limit: 10 })).map((j) => j.jobId)).toEqual([
      'j2',
    ]);
    expect((await store.activeJobs()).map((j) => j.jobId).sort()).toEqual(['j0', 'j1']);
  });

  it('putJob writes only at the expected version', async () => {
    const j = (await store.getJob('j1'))!;
    const next = { ...j, description: 'changed', version: j.version + 1 };
    expect(await store.putJob(next, j.version)).toBe(true);
    expect(await store.putJob({ ...next, description: 'lost' }, j.version)).toBe(false);
    expect((await store.getJob('j1'))!.description).toBe('changed');
  });

  it('targets: pending in order, added once, launched once even when two launches race', async () => {
    expect(await store.pendingTargets('j1', 10)).toEqual(['t1', 't2']);
    expect(await store.addTargets('j1', ['t2', 't3'])).toBe(1);
    expect(await store.pendingTargets('j1', 10)).toEqual(['t1', 't2', 't3']);
    expect(await store.pendingCount('j1')).toBe(3);
    const [a, b] = await Promise.all([store.launch('j1', 1, T0), store.launch('j1', 1, T0)]);
    // Each target is claimed once between them (PostgreSQL: the loser of a row may come back empty).
    const raced = [...a, ...b].map((e) => e.thingName);
    expect(new Set(raced).size).toBe(raced.length);
    const topUp = await store.launch('j1', 2 - raced.length, T0);
    expect([...raced, ...topUp.map((e) => e.thingName)].sort()).toEqual(['t1', 't2']);
    expect(await store.pendingTargets('j1', 10)).toEqual(['t3']);
    expect(await store.launch('j1', 0, T0)).toEqual([]);
    expect(await store.getExecution('j1', 't1')).toEqual(exec('j1', 't1'));
    // The records launch returns are the rows it wrote.
    const one = [...a, ...b, ...topUp][0]!;
    expect(await store.getExecution('j1', one.thingName)).toEqual(one);
  });

  it('launch claims in batches: 1,200 targets in 3 launches, every execution written once', async () => {
    const things = Array.from({ length: 1200 }, (_, i) => `b${String(i).padStart(4, '0')}`);
    await store.insertJob(job('jb', { status: 'CANCELED' }), [], things);
    expect(await store.launch('jb', 500, T0)).toEqual([]); // only while the job is IN_PROGRESS
    expect(await store.pendingCount('jb')).toBe(1200);
    await store.putJob(job('jb', { version: 2 }), 1);
    const batches = [await store.launch('jb', 500, T0), await store.launch('jb', 500, T0 + 1)];
    batches.push(await store.launch('jb', 500, T0 + 2));
    expect(batches.map((b) => b.length)).toEqual([500, 500, 200]);
    expect(batches.flat().map((e) => e.thingName)).toEqual(things);
    expect(await store.counts('jb')).toEqual({ QUEUED: 1200 });
    const pending = await store.pendingForThings(['b0000', 'b0999', 'nobody']);
    expect([...pending.keys()].sort()).toEqual(['b0000', 'b0999']);
    expect(pending.get('b0999')).toEqual([exec('jb', 'b0999', { queuedAt: T0 + 1, lastUpdatedAt: T0 + 1 })]);
    await store.deleteJob('jb');
  });

  it('putExecution is conditional on versionNumber; due() finds IN_PROGRESS attempts past a deadline', async () => {
    const e = (await store.getExecution('j1', 't1'))!;
    const started = {
      ...e,
      status: 'IN_PROGRESS' as const,
      versionNumber: 2,
      startedAt: T0 + 1,
      stepDeadline: T0 + 1000,
      progressDeadline: T0 + 5000,
      statusDetails: { step: '1' },
    };
    expect(await store.putExecution(started, 1)).toBe(true);
    expect(await store.putExecution({ ...started, versionNumber: 3 }, 1)).toBe(false);
    expect(await store.getExecution('j1', 't1')).toEqual(started);
    expect(await store.due(T0 + 999, 10)).toEqual([]);
    expect((await store.due(T0 + 1000, 10)).map((x) => x.thingName)).toEqual(['t1']);
    expect((await store.pendingForThing('t1')).map((x) => x.jobId)).toEqual(['j1']);
    expect(await store.counts('j1')).toEqual({ IN_PROGRESS: 1, QUEUED: 1 });
    expect((await store.executionsInState('j1', ['QUEUED'], 10)).map((x) => x.thingName)).toEqual(['t2']);
  });

  it('retry supersedes the latest attempt once; older attempts stay readable by number', async () => {
    const e = (await store.getExecution('j1', 't1'))!;
    const failed = {
      ...e,
      status: 'FAILED' as const,
      versionNumber: e.versionNumber + 1,
      stepDeadline: null,
    };
    expect(await store.putExecution(failed, e.versionNumber)).toBe(true);
    const second = exec('j1', 't1', { executionNumber: 2, retryAttempt: 1, queuedAt: T0 + 10 });
    expect(await store.retry(failed, failed.versionNumber, second)).toBe(true);
    expect(await store.retry(failed, failed.versionNumber, { ...second, executionNumber: 3 })).toBe(false);
    expect(await store.getExecution('j1', 't1')).toEqual(second);
    expect((await store.getExecution('j1', 't1', 1))!.status).toBe('FAILED');
    expect(await store.counts('j1')).toEqual({ QUEUED: 2 });
    expect(
      (await store.listForJob('j1', { limit: 10 })).map((x) => [x.thingName, x.executionNumber]),
    ).toEqual([
      ['t1', 2],
      ['t2', 1],
    ]);
  });

  it('lists per job and per thing with cursors and status filters; deletes one attempt', async () => {
    await store.launch('j0', 10, T0);
    await store.addTargets('j0', ['t1']);
    await store.launch('j0', 10, T0 + 20);
    expect((await store.listForThing('t1', { limit: 10 })).map((x) => x.jobId)).toEqual(['j0', 'j1']);
    expect((await store.listForThing('t1', { after: 'j0', limit: 10 })).map((x) => x.jobId)).toEqual(['j1']);
    expect((await store.listForThing('t1', { jobId: 'j0', limit: 10 })).map((x) => x.jobId)).toEqual(['j0']);
    expect((await store.listForJob('j1', { after: 't1', limit: 10 })).map((x) => x.thingName)).toEqual([
      't2',
    ]);
    expect((await store.listForJob('j1', { status: 'IN_PROGRESS', limit: 10 })).length).toBe(0);
    expect((await store.pendingForThing('t1')).map((x) => x.jobId)).toEqual(['j1', 'j0']);
    expect(await store.deleteExecution('j0', 't1', 1)).toBe(true);
    expect(await store.deleteExecution('j0', 't1', 1)).toBe(false);
    expect(await store.getExecution('j0', 't1')).toBeNull();
  });

  it('a dropped target can rejoin and is launched as the next execution number', async () => {
    expect(await store.dropTarget('j1', 't2')).toBe(true);
    expect(await store.addTargets('j1', ['t2'])).toBe(1);
    const relaunched = await store.launch('j1', 2, T0); // t3 (pending since the start), then t2 again
    expect(relaunched.map((e) => [e.thingName, e.executionNumber])).toEqual([
      ['t3', 1],
      ['t2', 2],
    ]);
    const again = relaunched[1];
    expect(again!.executionNumber).toBe(2);
    expect(await store.getExecution('j1', 't2')).toEqual(again);
    expect((await store.getExecution('j1', 't2', 1))!.executionNumber).toBe(1);
    expect((await store.listForJob('j1', { limit: 10 })).filter((e) => e.thingName === 't2')).toHaveLength(1);
    expect(await store.addTargets('j1', ['t4'])).toBe(1);
    expect(await store.dropPendingTargets('j1')).toBe(1); // t4
    expect(await store.pendingCount('j1')).toBe(0);
  });

  it('associate appends target ARNs and pending things only at the expected job version', async () => {
    const j = (await store.getJob('j1'))!;
    const next = { ...j, targetCount: 3, version: j.version + 1 };
    expect(await store.associate(next, j.version, [`${ARN}:thinggroup/g9`], ['t9', 't1'])).toBe(true);
    expect(await store.associate(next, j.version, [`${ARN}:thinggroup/g8`], ['t8'])).toBe(false);
    expect(await store.targetArns('j1')).toEqual([
      `${ARN}:thing/t1`,
      `${ARN}:thinggroup/g1`,
      `${ARN}:thinggroup/g9`,
    ]);
    expect(await store.pendingTargets('j1', 10)).toEqual(['t9']); // t1 is a target already
    expect((await store.getJob('j1'))!.targetCount).toBe(3);
    expect(await store.jobsReaching('x', ['g9'])).toEqual(['j1']);
  });

  it('deleteJob removes the job, its targets and executions', async () => {
    await store.deleteJob('j1');
    expect(await store.targetArns('j1')).toEqual([]);
    expect(await store.jobsReaching('t1', ['g1'])).toEqual([]);
    expect(await store.getJob('j1')).toBeNull();
    expect(await store.getExecution('j1', 't1')).toBeNull();
    expect(await store.pendingTargets('j1', 10)).toEqual([]);
    expect(await store.counts('j1')).toEqual({});
  });

  it('templates: insert once, read, list with a cursor, delete', async () => {
    const t = {
      jobTemplateId: 'tpl-b',
      description: 'x',
      document: '{"a":1}',
      documentSource: null,
      config: { timeoutConfig: { inProgressTimeoutInMinutes: 3 } },
      createdAt: T0,
    };
    expect(await store.insertTemplate(t)).toBe(true);
    expect(await store.insertTemplate(t)).toBe(false);
    await store.insertTemplate({ ...t, jobTemplateId: 'tpl-a' });
    expect(await store.getTemplate('tpl-b')).toEqual(t);
    expect((await store.listTemplates({ limit: 10 })).map((x) => x.jobTemplateId)).toEqual([
      'tpl-a',
      'tpl-b',
    ]);
    expect((await store.listTemplates({ after: 'tpl-a', limit: 10 })).map((x) => x.jobTemplateId)).toEqual([
      'tpl-b',
    ]);
    expect(await store.deleteTemplate('tpl-a')).toBe(true);
    expect(await store.deleteTemplate('tpl-a')).toBe(false);
  });
  it('migration 2 moves the target ARNs of jobs written by version 1 out of the job body', async () => {
    const { db: old, drop: dropOld } = await open();
    try {
      await migrate(old, 'jobs', JOBS_MIGRATIONS.slice(0, 1));
      const { targetCount: _c, firstTarget: _f, ...v1 } = job('old');
      const targets = [`${ARN}:thing/a`, `${ARN}:thinggroup/fleet`];
      await old.run(
        'INSERT INTO jobs (job_id, status, target_selection, body, rollout, created_at, updated_at, completed_at, version) ' +
          "VALUES ('old', 'IN_PROGRESS', 'CONTINUOUS', $1, $2, $3, $3, NULL, 1)",
        [JSON.stringify({ ...v1, targets }), JSON.stringify(v1.rollout), T0],
      );
      const migrated = await createJobsStore(old);
      expect(await migrated.targetArns('old')).toEqual(targets);
      expect(await migrated.jobsReaching('zz', ['fleet'])).toEqual(['old']);
      expect(await migrated.getJob('old')).toMatchObject({ targetCount: 2, firstTarget: targets[0] });
    } finally {
      await old.close();
      await dropOld();
    }
  });
});
