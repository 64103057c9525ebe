/**
 * What follows a change to job executions, in one place so every path (device updates over MQTT and HTTP,
 * the rollout, timers, cancels, deletes, continuous-group changes) does the same:
 * - the thing hears about it: `$aws/things/{thing}/jobs/notify` when its pending list gains or loses an
 *   execution, `notify-next` when which execution is next changes (reference §8.3);
 * - `$aws/events/jobExecution/{jobId}/{succeeded,failed,...}` when an execution reaches a terminal state;
 * - retries (jobExecutionsRetryConfig), the abort check (abortConfig), and completion of a snapshot job;
 * - `$aws/events/job/{jobId}/{completed,canceled,...}` for the job.
 *
 * Contract: called after the write committed; a failure here is logged, never thrown into the request
 * that made the change (the change stands; the next tick or change re-checks the job).
 */
import { emitEvent, timing, type JobsContext } from './context.js';
import { substitute } from './documents.js';
import { newExecution, nextPending, serviceTransition } from './executions.js';
import { deviceExecutionShape, deviceSummaryShape, jobProcessDetails, seconds } from './shapes.js';
import { isTerminal, type ExecutionRecord, type ExecutionStatus, type JobRecord } from './types.js';

const PENDING: ReadonlySet<ExecutionStatus> = new Set(['QUEUED', 'IN_PROGRESS']);
const isPending = (e: ExecutionRecord | null): e is ExecutionRecord => e !== null && PENDING.has(e.status);
const same = (a: ExecutionRecord | null, b: ExecutionRecord | null) =>
  a === b || (a !== null && b !== null && a.jobId === b.jobId && a.executionNumber === b.executionNumber);

export type Reactions = ReturnType<typeof createReactions>;

export function createReactions(ctx: JobsContext) {
  const { store } = ctx;
  const log = ctx.logger;

  /**
   * Substituted documents by job id. A job's document never changes after CreateJob, so entries live
   * DOCUMENT_TTL_MS (bounding staleness when another process deletes and re-creates the same id) and go at
   * once when this process deletes the job. Without it, notifying N things re-read the job row N times.
   */
  const documents = new Map<
    string,
    { text: string; at: number; presign: JobRecord['config']['presignedUrlConfig'] }
  >();
  const DOCUMENT_TTL_MS = 10_000;

  /** The job document as a device gets it (parameters substituted, then ctx.deliverDocument); null when the job is gone. */
  async function documentOf(jobId: string, job?: JobRecord | null): Promise<string | null> {
    const deliver = (e: { text: string; presign: JobRecord['config']['presignedUrlConfig'] }) =>
      ctx.deliverDocument ? ctx.deliverDocument(e.text, e.presign) : e.text;
    const cached = documents.get(jobId);
    if (cached && ctx.now() - cached.at < DOCUMENT_TTL_MS) return deliver(cached);
    const j = job !== undefined && job !== null && job.jobId === jobId ? job : await store.getJob(jobId);
    if (!j) return null;
    const entry = {
      text: substitute(j.document, j.config.documentParameters),
      at: ctx.now(),
      presign: j.config.presignedUrlConfig,
    };
    if (documents.size >= 1000) documents.delete(documents.keys().next().value!);
    documents.set(jobId, entry);
    return deliver(entry);
  }

  /** Forget a deleted job's cached document. */
  const forget = (jobId: string) => documents.delete(jobId);

  /**
   * Tell the thing what changed for one job: `before` and `after` are that job's latest attempt on the
   * thing before and after the change (null: none). The thing's other pending executions are unchanged.
   */
  async function announce(thingName: string, before: ExecutionRecord | null, after: ExecutionRecord | null) {
    await announceWith(thingName, before, after, await store.pendingForThing(thingName));
  }

  /** announce, given the thing's pending executions after the change (`now`). */
  async function announceWith(
    thingName: string,
    before: ExecutionRecord | null,
    after: ExecutionRecord | null,
    now: readonly ExecutionRecord[],
  ) {
    const jobId = (after ?? before)!.jobId;
    const others = now.filter((e) => e.jobId !== jobId);
    const listBefore = isPending(before) ? [...others, before] : others;
    const listAfter = now;
    const t = seconds(ctx.now());
    if (isPending(before) !== isPending(after) || (isPending(before) && !same(before, after))) {
      const jobs: Record<string, unknown[]> = {};
      for (const e of listAfter) (jobs[e.status] ??= []).push(deviceSummaryShape(e));
      ctx.publish(`$aws/things/${thingName}/jobs/notify`, { timestamp: t, jobs });
    }
    const nextBefore = nextPending(listBefore);
    const nextAfter = nextPending(listAfter);
    if (!same(nextBefore, nextAfter)) {
      const document = nextAfter ? await documentOf(nextAfter.jobId) : null;
      ctx.publish(`$aws/things/${thingName}/jobs/notify-next`, {
        timestamp: t,
        ...(nextAfter && document !== null
          ? { execution: deviceExecutionShape(nextAfter, document, { asObject: true, now: ctx.now() }) }
          : {}),
      });
    }
  }

  function executionEvent(e: ExecutionRecord) {
    emitEvent(ctx, 'JOB_EXECUTION', `$aws/events/jobExecution/${e.jobId}/${e.status.toLowerCase()}`, {
      operation: e.status.toLowerCase(),
      jobId: e.jobId,
      thingArn: ctx.arn('thing', e.thingName),
      status: e.status,
      statusDetails: { ...e.statusDetails },
    });
  }

  /**
   * A `$aws/events/job/{jobId}/{operation}` event when JOB events are on. The target ARNs are read from the
   * store only then (or given: `deleted` is sent after the rows are gone). Never throws.
   */
  async function jobEvent(
    job: JobRecord,
    operation: string,
    options: { counts?: Partial<Record<ExecutionStatus, number>>; targets?: readonly string[] } = {},
  ): Promise<void> {
    if (!ctx.eventsEnabled('JOB')) return;
    const targets = options.targets ?? (await store.targetArns(job.jobId).catch(() => []));
    const counts = options.counts;
    emitEvent(ctx, 'JOB', `$aws/events/job/${job.jobId}/${operation}`, {
      operation,
      jobId: job.jobId,
      status: job.status,
      targetSelection: job.targetSelection,
      targets: [...targets],
      ...(job.description !== null ? { description: job.description } : {}),
      createdAt: seconds(job.createdAt),
      lastUpdatedAt: seconds(job.updatedAt),
      ...(job.completedAt !== null ? { completedAt: seconds(job.completedAt) } : {}),
      ...(counts ? { jobProcessDetails: jobProcessDetails(job, counts, targets) } : {}),
    });
  }

  /** Retry a FAILED or TIMED_OUT attempt when the job's retry config allows one more. */
  async function maybeRetry(job: JobRecord, e: ExecutionRecord): Promise<boolean> {
    if (job.status !== 'IN_PROGRESS' || (e.status !== 'FAILED' && e.status !== 'TIMED_OUT')) return false;
    const allowed = Math.max(
      0,
      ...(job.config.jobExecutionsRetryConfig?.criteriaList ?? [])
        .filter((c) => c.failureType === 'ALL' || c.failureType === e.status)
        .map((c) => c.numberOfRetries),
    );
    if (e.retryAttempt >= allowed) return false;
    const next = newExecution(e.jobId, e.thingName, ctx.now(), {
      executionNumber: e.executionNumber + 1,
      retryAttempt: e.retryAttempt + 1,
    });
    if (!(await store.retry(e, e.versionNumber, next))) return false;
    await announce(e.thingName, e, next);
    return true;
  }

  /**
   * The job after one of its executions changed: abort when a failure threshold is crossed, complete a
   * snapshot job whose rollout is done and whose executions are all terminal. Retries on write races.
   */
  async function checkJob(jobId: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const job = await store.getJob(jobId);
      if (!job || job.status !== 'IN_PROGRESS') return;
      const counts = await store.counts(jobId);
      const abort = abortReason(job, counts);
      if (abort) {
        await cancelJob(jobId, { force: false, reasonCode: 'ABORT_CONFIG', comment: abort });
        return;
      }
      const live = (counts.QUEUED ?? 0) + (counts.IN_PROGRESS ?? 0);
      const doneRolling = job.rollout.exhausted || job.rollout.stopped === true;
      if (job.targetSelection !== 'SNAPSHOT' || !doneRolling || live > 0) return;
      if ((await store.pendingCount(jobId)) > 0) return;
      const now = ctx.now();
      const done: JobRecord = {
        ...job,
        status: 'COMPLETED',
        completedAt: now,
        updatedAt: now,
        version: job.version + 1,
      };
      if (await store.putJob(done, job.version)) {
        await jobEvent(done, 'completed', { counts });
        return;
      }
    }
  }

  /** Why the abort config fires now, or null. */
  function abortReason(job: JobRecord, counts: Partial<Record<ExecutionStatus, number>>): string | null {
    const criteria = job.config.abortConfig?.criteriaList ?? [];
    if (!criteria.length) return null;
    const n = (s: ExecutionStatus) => counts[s] ?? 0;
    const executed = n('SUCCEEDED') + n('FAILED') + n('REJECTED') + n('TIMED_OUT');
    for (const c of criteria) {
      if (executed < c.minNumberOfExecutedThings || executed === 0) continue;
      const failures =
        c.failureType === 'ALL' ? n('FAILED') + n('REJECTED') + n('TIMED_OUT') : n(c.failureType);
      const pct = (failures * 100) / executed;
      if (pct >= c.thresholdPercentage)
        return `Canceled by abortConfig: ${c.failureType} executions reached ${pct.toFixed(1)}% of ${executed} executed things (threshold ${c.thresholdPercentage}%)`;
    }
    return null;
  }

  /** After one execution changed (created, updated, timed out, canceled, removed, deleted). */
  async function executionChanged(
    before: ExecutionRecord | null,
    after: ExecutionRecord | null,
    options: { checkJob?: boolean } = {},
  ): Promise<void> {
    const e = (after ?? before)!;
    try {
      await announce(e.thingName, before, after);
      if (after && isTerminal(after.status) && !(before && isTerminal(before.status))) {
        executionEvent(after);
        const job = await store.getJob(after.jobId);
        if (job) await maybeRetry(job, after);
      }
      if (options.checkJob !== false) await checkJob(e.jobId);
    } catch (err) {
      log.warn({ err, jobId: e.jobId, thingName: e.thingName }, 'job execution follow-up failed');
    }
  }

  /**
   * After the rollout created `created` (new QUEUED first attempts, one per thing): announce each to its
   * thing as executionChanged(null, e) would, reading every thing's pending list in one query. Never throws.
   */
  async function launched(created: readonly ExecutionRecord[]): Promise<void> {
    if (created.length === 0) return;
    ctx.onExecutionsCreated?.(created.map((e) => e.thingName));
    try {
      const pending = await store.pendingForThings(created.map((e) => e.thingName));
      for (const e of created) await announceWith(e.thingName, null, e, pending.get(e.thingName) ?? [e]);
    } catch (err) {
      log.warn({ err, jobId: created[0]!.jobId }, 'job execution notifications failed');
    }
  }

  /**
   * Cancel a job (CancelJob, abortConfig, schedulingConfig endBehavior): the job becomes CANCELED, targets
   * not launched yet are dropped, QUEUED executions (and IN_PROGRESS ones with `force`) become CANCELED.
   * Returns the canceled job, or null when it was not cancelable (terminal; the caller decides the error).
   */
  async function cancelJob(
    jobId: string,
    request: { force: boolean; reasonCode?: string | undefined; comment?: string | undefined },
  ): Promise<JobRecord | null> {
    let canceled: JobRecord | null = null;
    for (let attempt = 0; attempt < 10 && !canceled; attempt++) {
      const job = await store.getJob(jobId);
      if (!job) return null;
      const recancel = job.status === 'CANCELED' && request.force && !job.forceCanceled;
      if (job.status !== 'IN_PROGRESS' && job.status !== 'SCHEDULED' && !recancel) return null;
      const now = ctx.now();
      const next: JobRecord = {
        ...job,
        status: 'CANCELED',
        forceCanceled: job.forceCanceled || request.force,
        reasonCode: request.reasonCode ?? job.reasonCode,
        comment: request.comment ?? job.comment,
        updatedAt: now,
        completedAt: job.completedAt ?? now,
        version: job.version + 1,
      };
      if (await store.putJob(next, job.version)) canceled = next;
    }
    if (!canceled) return null;
    await store.dropPendingTargets(jobId);
    await cancelExecutions(canceled, request.force);
    await jobEvent(canceled, 'canceled', { counts: await store.counts(jobId) });
    return canceled;
  }

  /** Cancel the job's QUEUED (and with `force` IN_PROGRESS) latest executions, each announced. */
  async function cancelExecutions(job: JobRecord, force: boolean): Promise<void> {
    const statuses: ExecutionStatus[] = force ? ['QUEUED', 'IN_PROGRESS'] : ['QUEUED'];
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const batch = await store.executionsInState(job.jobId, statuses, 200);
      if (!batch.length) return;
      let progressed = false;
      for (const e of batch) {
        const next = serviceTransition(e, 'CANCELED', timing(ctx, job), {
          forceCanceled: e.status === 'IN_PROGRESS',
        });
        if (await store.putExecution(next, e.versionNumber)) {
          progressed = true;
          await executionChanged(e, next, { checkJob: false });
        }
      }
      if (!progressed) await new Promise((r) => setTimeout(r, 5));
    }
  }

  return { announce, executionChanged, launched, checkJob, cancelJob, jobEvent, documentOf, forget };
}
