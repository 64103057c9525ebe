import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  CreateJobCommand,
  CreateJobTemplateCommand,
  DescribeJobCommand,
  DescribeJobTemplateCommand,
} from '@aws-sdk/client-iot';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * schedulingConfig.maintenanceWindows (AWS cron, UTC; reference §3.8) through @aws-sdk/client-iot: a job
 * launches executions only inside a window. Windows are wall-clock, so the test computes them around now:
 * one open now (it began this minute and lasts two), one that closed five minutes ago, one that opens in
 * half an hour. The window arithmetic itself (boundaries, L/W/#, midnight) is src/jobs/windows.test.ts.
 */
const TICK = 25;
let h: JobsHarness;
beforeAll(async () => {
  h = await jobsPlatform({ jobs: { minuteMs: 1000, tickMs: TICK } });
});
afterAll(() => h?.platform.stop());

/** A daily window `cron(m h * * ? *)` at the UTC minute `offsetMinutes` from now. */
function dailyAt(offsetMinutes: number, durationInMinutes: number) {
  const t = new Date(Date.now() + offsetMinutes * 60_000);
  return {
    startTime: `cron(${t.getUTCMinutes()} ${t.getUTCHours()} * * ? *)`,
    durationInMinutes,
    start: Math.floor(t.getTime() / 60_000) * 60_000,
  };
}
const created = async (jobId: string) => (await h.platform.jobs.store.counts(jobId)).QUEUED ?? 0;

describe('maintenance windows', () => {
  test('executions are launched only inside a window', async () => {
    const things = Array.from({ length: 6 }, (_, i) => `mw${i}`);
    await h.things(...things);
    const targets = things.map((t) => h.arn('thing', t));
    const open = dailyAt(0, 2);
    const closed = dailyAt(-10, 5);
    const later = dailyAt(30, 10);
    for (const [jobId, w] of [
      ['mw-open', open],
      ['mw-closed', closed],
      ['mw-later', later],
    ] as const)
      await h.iot.send(
        new CreateJobCommand({
          jobId,
          targets,
          document: '{}',
          schedulingConfig: {
            maintenanceWindows: [{ startTime: w.startTime, durationInMinutes: w.durationInMinutes }],
          },
        }),
      );
    await waitFor(async () => (await created('mw-open')) === 6, 5000, 'the open window launched');
    // Forty more ticks: the jobs outside their windows still launched nothing.
    await new Promise((r) => setTimeout(r, 40 * TICK));
    expect(await created('mw-closed')).toBe(0);
    expect(await created('mw-later')).toBe(0);
    const d = (await h.iot.send(new DescribeJobCommand({ jobId: 'mw-later' }))).job!;
    expect(d.status).toBe('IN_PROGRESS');
    expect(d.jobProcessDetails).toMatchObject({ numberOfQueuedThings: 0 });
    expect(d.schedulingConfig!.maintenanceWindows).toEqual([
      { startTime: later.startTime, durationInMinutes: 10 },
    ]);
    // The next seven occurrences, one a day from the first.
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16);
    expect(d.scheduledJobRollouts!.map((r) => r.startTime)).toEqual(
      Array.from({ length: 7 }, (_, i) => iso(later.start + i * 86_400_000)),
    );
  });

  test('a startTime that is not AWS cron is InvalidRequestException; templates carry windows to their jobs', async () => {
    await h.things('mw-bad');
    await expect(
      h.iot.send(
        new CreateJobCommand({
          jobId: 'mw-bad',
          targets: [h.arn('thing', 'mw-bad')],
          document: '{}',
          schedulingConfig: {
            maintenanceWindows: [{ startTime: 'cron(0 2 * * SUN *)', durationInMinutes: 60 }],
          },
        }),
      ),
    ).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message:
        "schedulingConfig.maintenanceWindows[0].startTime 'cron(0 2 * * SUN *)' is not an AWS cron expression: " +
        'exactly one of day-of-month and day-of-week must be ?',
    });
    const closed = dailyAt(-10, 5);
    const windows = [{ startTime: closed.startTime, durationInMinutes: 5 }];
    await h.iot.send(
      new CreateJobTemplateCommand({
        jobTemplateId: 'mw-template',
        description: 'nightly',
        document: '{}',
        maintenanceWindows: windows,
      }),
    );
    expect(
      (await h.iot.send(new DescribeJobTemplateCommand({ jobTemplateId: 'mw-template' }))).maintenanceWindows,
    ).toEqual(windows);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'mw-from-template',
        targets: [h.arn('thing', 'mw-bad')],
        jobTemplateArn: h.arn('jobtemplate', 'mw-template'),
      }),
    );
    await new Promise((r) => setTimeout(r, 20 * TICK));
    expect(await created('mw-from-template')).toBe(0);
  });
});
