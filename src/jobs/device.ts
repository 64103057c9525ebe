/**
 * The device side of jobs, shared by MQTT (`$aws/things/{thing}/jobs/...`, mqtt.ts) and the HTTP jobs data
 * plane (api.ts): GetPendingJobExecutions, StartNextPendingJobExecution, DescribeJobExecution (`$next`
 * included) and UpdateJobExecution (reference §5, §8.3). Returns records; the transports shape them.
 *
 * Writes are optimistic (store.ts): an update that names `expectedVersion` and loses a race answers
 * VersionMismatch; one without re-reads and re-applies, so two devices' requests never overwrite each
 * other blindly. A QUEUED execution starts (or is reported on) only while its job is IN_PROGRESS, checked
 * in the same conditional write: once a cancel (CancelJob, abortConfig, endBehavior) is written, none starts.
 */
import { E } from '../errors/index.js';
import { timing, type JobsContext } from './context.js';
import { applyDeviceUpdate, nextPending, startExecution, type DeviceUpdate } from './executions.js';
import type { Reactions } from './reactions.js';
import type { ExecutionRecord } from './types.js';

export interface DeviceResult {
  readonly execution: ExecutionRecord;
  /** The substituted job document, when asked for (null otherwise). */
  readonly document: string | null;
}

export type DeviceJobs = ReturnType<typeof createDeviceJobs>;

export function createDeviceJobs(ctx: JobsContext, reactions: Reactions) {
  const { store } = ctx;

  async function withDocument(e: ExecutionRecord, include: boolean): Promise<DeviceResult> {
    return { execution: e, document: include ? await reactions.documentOf(e.jobId) : null };
  }

  return {
    /** QUEUED and IN_PROGRESS executions of the thing, oldest first. */
    async getPending(thingName: string) {
      const pending = await store.pendingForThing(thingName);
      return {
        inProgress: pending.filter((e) => e.status === 'IN_PROGRESS'),
        queued: pending.filter((e) => e.status === 'QUEUED'),
      };
    },

    /** The next pending execution, started if it was QUEUED; null when nothing is pending. */
    async startNext(
      thingName: string,
      request: { statusDetails?: Record<string, string>; stepTimeoutInMinutes?: number },
    ): Promise<DeviceResult | null> {
      for (let attempt = 0; attempt < 5; attempt++) {
        let pending = await store.pendingForThing(thingName);
        for (;;) {
          const next = nextPending(pending);
          if (!next) return null;
          if (next.status === 'IN_PROGRESS') return withDocument(next, true);
          const job = await store.getJob(next.jobId);
          // A QUEUED execution of a job being canceled is not startable: the next one is.
          if (job?.status !== 'IN_PROGRESS') {
            pending = pending.filter((e) => e !== next);
            continue;
          }
          const started = startExecution(next, request, timing(ctx, job));
          if (await store.putExecution(started, next.versionNumber, { whileJobInProgress: true })) {
            await reactions.executionChanged(next, started);
            return withDocument(started, true);
          }
          break; // lost a race (or the job was canceled meanwhile): read again
        }
      }
      throw E.JobWriteConflict({ jobId: 'next' });
    },

    /** One execution (the latest attempt unless `executionNumber`); `$next` is the next pending one. */
    async describe(
      thingName: string,
      jobId: string,
      options: { executionNumber?: number; includeJobDocument?: boolean },
    ): Promise<DeviceResult> {
      const include = options.includeJobDocument ?? true;
      if (jobId === '$next') {
        const next = nextPending(await store.pendingForThing(thingName));
        if (!next) throw E.JobExecutionNotFound({ jobId, thingName });
        return withDocument(next, include);
      }
      const e = await store.getExecution(jobId, thingName, options.executionNumber);
      if (!e) throw E.JobExecutionNotFound({ jobId, thingName });
      return withDocument(e, include);
    },

    /** UpdateJobExecution: the state machine of executions.ts, written with a version check. */
    async update(
      thingName: string,
      jobId: string,
      request: DeviceUpdate & { executionNumber?: number; includeJobDocument?: boolean },
    ): Promise<DeviceResult> {
      for (let attempt = 0; attempt < 5; attempt++) {
        const e = await store.getExecution(jobId, thingName, request.executionNumber);
        if (!e) throw E.JobExecutionNotFound({ jobId, thingName });
        const job = await store.getJob(jobId);
        const next = applyDeviceUpdate(e, request, timing(ctx, job));
        // Once a job is canceled its QUEUED executions never start (they are being canceled); IN_PROGRESS
        // ones may still finish. The write re-checks the job, so a cancel committed first always wins.
        const starting = e.status === 'QUEUED';
        if (starting && job?.status !== 'IN_PROGRESS')
          throw E.JobExecutionNotStartable({ jobId, thingName, status: job?.status ?? 'deleted' });
        if (await store.putExecution(next, e.versionNumber, { whileJobInProgress: starting })) {
          await reactions.executionChanged(e, next);
          return withDocument(next, request.includeJobDocument === true);
        }
        if (starting) continue; // the job may have been canceled meanwhile: read both again
        if (request.expectedVersion !== undefined)
          throw E.JobExecutionVersion({ expected: request.expectedVersion, actual: e.versionNumber + 1 });
      }
      throw E.JobWriteConflict({ jobId });
    },
  };
}
