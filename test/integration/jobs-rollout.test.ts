import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  CreateJobCommand,
  DescribeJobCommand,
  DescribeJobExecutionCommand,
  ListJobExecutionsForJobCommand,
  type JobExecutionSummaryForJob,
} from '@aws-sdk/client-iot';
import {
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
} from '@aws-sdk/client-iot-jobs-data-plane';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { startTestPlatform, waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * Rollout and safety (issue 11): rates, abort, timeouts, the watchdog, retries, scheduling, a restart in
 * the middle of a rollout, and one runner among processes sharing PostgreSQL. A job minute is 300 ms here
 * (jobs.minuteMs), so AWS's minute-based settings run in seconds.
 */
const MINUTE = 300;
const pg = await postgresAvailable('jobs rollout leader test');
let h: JobsHarness;
beforeAll(async () => {
  h = await jobsPlatform({ jobs: { minuteMs: MINUTE, tickMs: 20, watchdogMinutes: 3 } });
});
afterAll(() => h?.platform.stop());

const names = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);
async function executions(jobId: string): Promise<JobExecutionSummaryForJob[]> {
  const out: JobExecutionSummaryForJob[] = [];
  let nextToken: string | undefined;
  do {
    const r = await h.iot.send(new ListJobExecutionsForJobCommand({ jobId, nextToken, maxResults: 250 }));
    out.push(...r.executionSummaries!);
    nextToken = r.nextToken;
  } while (nextToken);
  return out;
}
const created = async (jobId: string) =>
  (await h.platform.jobs.store.listForJob(jobId, { limit: 10_000 }))
    .map((e) => e.queuedAt)
    .sort((a, b) => a - b);
const job = async (jobId: string) => (await h.iot.send(new DescribeJobCommand({ jobId }))).job!;
const fail = async (thingName: string, jobId: string) =>
  h.data.send(new UpdateJobExecutionCommand({ thingName, jobId, status: 'FAILED' }));

describe('jobExecutionsRolloutConfig', () => {
  test('maximumPerMinute: never more than the rate in any job minute; every target reached once', async () => {
    const things = names('rate', 12);
    await h.things(...things);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'rate-job',
        targets: things.map((t) => h.arn('thing', t)),
        document: '{}',
        jobExecutionsRolloutConfig: { maximumPerMinute: 4 },
      }),
    );
    await waitFor(async () => (await created('rate-job')).length === 12, 10_000, 'all launched');
    const at = await created('rate-job');
    // Any 5 consecutive launches span at least one job minute (4 per minute at most).
    for (let i = 0; i + 4 < at.length; i++) expect(at[i + 4]! - at[i]!).toBeGreaterThanOrEqual(MINUTE - 5);
    // And the rollout did not crawl: 12 at 4/minute is 3 windows.
    expect(at[11]! - at[0]!).toBeLessThan(6 * MINUTE);
    expect(new Set((await executions('rate-job')).map((e) => e.thingArn)).size).toBe(12);
  });

  test('exponentialRate: starts at baseRatePerMinute and multiplies as notified things reach the criteria', async () => {
    const things = names('exp', 14);
    await h.things(...things);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'exp-job',
        targets: things.map((t) => h.arn('thing', t)),
        document: '{}',
        jobExecutionsRolloutConfig: {
          maximumPerMinute: 8,
          exponentialRate: {
            baseRatePerMinute: 2,
            incrementFactor: 2,
            rateIncreaseCriteria: { numberOfNotifiedThings: 2 },
          },
        },
      }),
    );
    await waitFor(async () => (await created('exp-job')).length === 14, 10_000, 'all launched');
    const at = await created('exp-job');
    const t0 = at[0]!;
    // Windows of one job minute: 2, then 4, then 8 (capped by maximumPerMinute).
    const window = (k: number) =>
      at.filter((t) => t - t0 >= k * MINUTE - 5 && t - t0 < (k + 1) * MINUTE - 5).length;
    expect(at.filter((t) => t - t0 < MINUTE - 5).length).toBe(2);
    expect(window(0)).toBe(2);
    expect(Math.max(...[1, 2, 3, 4].map(window))).toBeGreaterThanOrEqual(4);
    expect(Math.max(...[1, 2, 3, 4, 5].map(window))).toBeLessThanOrEqual(8);
    const d = await job('exp-job');
    expect(d.jobProcessDetails!.numberOfQueuedThings).toBe(14);
  });
});

describe('abortConfig', () => {
  test('crossing the failure threshold cancels the job and its queued rest; nothing starts after', async () => {
    const things = names('abort', 8);
    await h.things(...things);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'abort-job',
        targets: things.map((t) => h.arn('thing', t)),
        document: '{}',
        abortConfig: {
          criteriaList: [
            {
              failureType: 'FAILED',
              action: 'CANCEL',
              thresholdPercentage: 50,
              minNumberOfExecutedThings: 2,
            },
          ],
        },
      }),
    );
    await waitFor(async () => (await created('abort-job')).length === 8);
    await h.data.send(
      new UpdateJobExecutionCommand({ thingName: 'abort00', jobId: 'abort-job', status: 'SUCCEEDED' }),
    );
    await fail('abort01', 'abort-job'); // 1 of 2 executed failed: 50%, threshold reached
    await waitFor(async () => (await job('abort-job')).status === 'CANCELED', 5000, 'aborted');
    const d = await job('abort-job');
    expect(d.reasonCode).toBe('ABORT_CONFIG');
    expect(d.comment).toMatch(/FAILED executions reached 50\.0% of 2 executed things/);
    expect(d.jobProcessDetails).toMatchObject({
      numberOfSucceededThings: 1,
      numberOfFailedThings: 1,
      numberOfCanceledThings: 6,
      numberOfQueuedThings: 0,
      numberOfInProgressThings: 0,
    });
    // A device asking for its next job after the abort gets nothing.
    const next = await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'abort05' }));
    expect(next.execution).toBeUndefined();
  });
});

describe('timers', () => {
  test('timeoutConfig: an IN_PROGRESS execution past inProgressTimeoutInMinutes is TIMED_OUT with the reason', async () => {
    await h.things('timeout1');
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'timeout-job',
        targets: [h.arn('thing', 'timeout1')],
        document: '{}',
        timeoutConfig: { inProgressTimeoutInMinutes: 1 },
      }),
    );
    await waitFor(async () => (await created('timeout-job')).length === 1);
    const started = Date.now();
    await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'timeout1' }));
    const e = await waitFor(async () => {
      const r = await h.iot.send(
        new DescribeJobExecutionCommand({ jobId: 'timeout-job', thingName: 'timeout1' }),
      );
      return r.execution!.status === 'TIMED_OUT' ? r.execution : null;
    }, 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(MINUTE - 20);
    expect(e.statusDetails!.detailsMap).toMatchObject({ 'thingstead:timedOutBy': 'inProgress' });
    expect(e.statusDetails!.detailsMap!['thingstead:timeoutReason']).toMatch(
      /inProgressTimeoutInMinutes \(1\) expired/,
    );
    // A TIMED_OUT execution cannot be updated any more.
    await expect(
      h.data.send(
        new UpdateJobExecutionCommand({ thingName: 'timeout1', jobId: 'timeout-job', status: 'SUCCEEDED' }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidStateTransitionException' });
    await waitFor(async () => (await job('timeout-job')).status === 'COMPLETED');
  });

  test('step timer: stepTimeoutInMinutes expires (and is reset by each update); -1 cancels it', async () => {
    await h.things('step1', 'step2');
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'step-job',
        targets: [h.arn('thing', 'step1'), h.arn('thing', 'step2')],
        document: '{}',
      }),
    );
    await waitFor(async () => (await created('step-job')).length === 2);
    await h.data.send(
      new StartNextPendingJobExecutionCommand({ thingName: 'step1', stepTimeoutInMinutes: 2 }),
    );
    await h.data.send(
      new StartNextPendingJobExecutionCommand({ thingName: 'step2', stepTimeoutInMinutes: 1 }),
    );
    await h.data.send(
      new UpdateJobExecutionCommand({
        thingName: 'step2',
        jobId: 'step-job',
        status: 'IN_PROGRESS',
        stepTimeoutInMinutes: -1,
      }),
    );
    const e = await waitFor(async () => {
      const r = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'step-job', thingName: 'step1' }));
      return r.execution!.status === 'TIMED_OUT' ? r.execution : null;
    }, 5000);
    expect(e.statusDetails!.detailsMap!['thingstead:timedOutBy']).toBe('step');
    const s2 = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'step-job', thingName: 'step2' }));
    expect(s2.execution!.status).toBe('IN_PROGRESS');
  });

  test('watchdog: an IN_PROGRESS execution with no timers and no updates does not stay IN_PROGRESS forever', async () => {
    await h.things('dog1');
    await h.iot.send(
      new CreateJobCommand({ jobId: 'dog-job', targets: [h.arn('thing', 'dog1')], document: '{}' }),
    );
    await waitFor(async () => (await created('dog-job')).length === 1);
    await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'dog1' }));
    const e = await waitFor(async () => {
      const r = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'dog-job', thingName: 'dog1' }));
      return r.execution!.status === 'TIMED_OUT' ? r.execution : null;
    }, 5000);
    expect(e.statusDetails!.detailsMap).toMatchObject({ 'thingstead:timedOutBy': 'watchdog' });
    expect(e.statusDetails!.detailsMap!['thingstead:timeoutReason']).toMatch(/No update for 3 minutes/);
  });
});

describe('jobExecutionsRetryConfig', () => {
  test('FAILED is retried as a new execution number up to numberOfRetries, then stays FAILED', async () => {
    await h.things('retry1');
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'retry-job',
        targets: [h.arn('thing', 'retry1')],
        document: '{}',
        jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 2 }] },
      }),
    );
    await waitFor(async () => (await created('retry-job')).length === 1);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const s = await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'retry1' }));
      expect(s.execution).toMatchObject({ jobId: 'retry-job', executionNumber: attempt });
      await fail('retry1', 'retry-job');
    }
    const [e] = await executions('retry-job');
    expect(e!.jobExecutionSummary).toMatchObject({ status: 'FAILED', executionNumber: 3, retryAttempt: 2 });
    const first = await h.iot.send(
      new DescribeJobExecutionCommand({ jobId: 'retry-job', thingName: 'retry1', executionNumber: 1 }),
    );
    expect(first.execution!.status).toBe('FAILED');
    const none = await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'retry1' }));
    expect(none.execution).toBeUndefined();
    await waitFor(async () => (await job('retry-job')).status === 'COMPLETED');
  });
});

describe('schedulingConfig', () => {
  test('SCHEDULED until startTime; endTime with STOP_ROLLOUT stops launching; CANCEL cancels', async () => {
    const things = names('sched', 6);
    await h.things(...things);
    const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'sched-job',
        targets: things.map((t) => h.arn('thing', t)),
        document: '{}',
        jobExecutionsRolloutConfig: { maximumPerMinute: 2 },
        schedulingConfig: {
          startTime: inMs(400),
          endTime: inMs(400 + MINUTE + 100),
          endBehavior: 'STOP_ROLLOUT',
        },
      }),
    );
    expect((await job('sched-job')).status).toBe('SCHEDULED');
    expect(await created('sched-job')).toEqual([]);
    await waitFor(async () => (await job('sched-job')).status === 'IN_PROGRESS', 5000, 'started');
    await waitFor(
      async () => (await h.platform.jobs.store.getJob('sched-job'))!.rollout.stopped === true,
      5000,
      'rollout stopped at endTime',
    );
    const n = (await created('sched-job')).length;
    // Three more job minutes: the rate would launch the rest, the stopped rollout launches nothing.
    await new Promise((r) => setTimeout(r, 3 * MINUTE));
    expect((await created('sched-job')).length).toBe(n);
    expect(await h.platform.jobs.store.pendingCount('sched-job')).toBe(0);
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThan(6);

    await h.iot.send(
      new CreateJobCommand({
        jobId: 'sched-cancel',
        targets: [h.arn('thing', 'sched00')],
        document: '{}',
        schedulingConfig: { endTime: inMs(200), endBehavior: 'CANCEL' },
      }),
    );
    await waitFor(async () => (await job('sched-cancel')).status === 'CANCELED', 5000, 'canceled at endTime');
    expect((await job('sched-cancel')).reasonCode).toBe('SCHEDULE_ENDED');
  });
});

describe('restarts and several processes', () => {
  test('a restart in the middle of a rollout neither loses nor duplicates an execution (SQLite)', async () => {
    const first = await startTestPlatform({ jobs: { minuteMs: MINUTE, tickMs: 20 } }, { keepData: true });
    const dataDir = first.endpoints.dataDir;
    const things = names('rs', 9);
    for (const t of things) await first.registry.createThing({ thingName: t });
    await first.jobs.service.createJob({
      jobId: 'restart-job',
      targets: things.map((t) => `arn:aws:iot:us-east-1:000000000000:thing/${t}`),
      document: '{}',
      jobExecutionsRolloutConfig: { maximumPerMinute: 3 },
    });
    await waitFor(async () => (await first.jobs.store.listForJob('restart-job', { limit: 100 })).length >= 3);
    await first.stop();
    const second = await startTestPlatform({ jobs: { minuteMs: MINUTE, tickMs: 20 } }, { dataDir });
    try {
      await waitFor(
        async () => (await second.jobs.store.pendingCount('restart-job')) === 0,
        10_000,
        'rollout resumed',
      );
      const all = await second.jobs.store.listForJob('restart-job', { limit: 100 });
      expect(all.map((e) => e.thingName)).toEqual(things);
      expect(all.every((e) => e.executionNumber === 1)).toBe(true);
    } finally {
      await second.stop();
    }
  });

  test.skipIf(!pg)('PostgreSQL: one process runs the rollout; when it stops another takes over', async () => {
    const schema = await freshSchema('jobs_leader');
    const cfg = { databaseUrl: schema.url, jobs: { minuteMs: MINUTE, tickMs: 20 } };
    // Nodes of one cluster share a data directory's keys (master.key, CA) as security-cluster.test.ts does.
    const dataDir = mkdtempSync(join(tmpdir(), 'jobs-leader-'));
    const a = await startTestPlatform(cfg, { dataDir });
    const b = await startTestPlatform(cfg, { dataDir });
    try {
      await waitFor(() => a.jobs.rollout.isLeader() || b.jobs.rollout.isLeader(), 5000, 'a leader');
      await new Promise((r) => setTimeout(r, 100));
      expect([a.jobs.rollout.isLeader(), b.jobs.rollout.isLeader()].filter(Boolean)).toHaveLength(1);
      const [leader, follower] = a.jobs.rollout.isLeader() ? [a, b] : [b, a];
      const things = names('pg', 8);
      for (const t of things) await follower.registry.createThing({ thingName: t });
      await follower.jobs.service.createJob({
        jobId: 'pg-job',
        targets: things.map((t) => `arn:aws:iot:us-east-1:000000000000:thing/${t}`),
        document: '{}',
        jobExecutionsRolloutConfig: { maximumPerMinute: 2 },
      });
      await waitFor(
        async () => (await follower.jobs.store.listForJob('pg-job', { limit: 100 })).length >= 2,
        5000,
      );
      await leader.stop();
      await waitFor(() => follower.jobs.rollout.isLeader(), 5000, 'takeover');
      await waitFor(
        async () => (await follower.jobs.store.pendingCount('pg-job')) === 0,
        10_000,
        'rollout finished',
      );
      const all = await follower.jobs.store.listForJob('pg-job', { limit: 100 });
      expect(all.map((e) => [e.thingName, e.executionNumber])).toEqual(things.map((t) => [t, 1]));
    } finally {
      await a.stop().catch(() => undefined);
      await b.stop().catch(() => undefined);
      await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
