/**
 * The rollout runner: the one place that creates executions, fires timers and follows thing-group changes.
 *
 * Exactly one process runs it when several share PostgreSQL: the holder of a session-level advisory lock
 * (`pg_try_advisory_lock`, taken on a connection held for the process's life; when that process dies the
 * lock goes with its session and another process takes over on its next tick). SQLite is one process, so it
 * always runs there. In cluster mode the cluster's leadership decides instead (`runsHere('jobs.rollout')`,
 * src/cluster/leader.ts, checked at every tick and kick). Every write it makes is conditional as well
 * (store.ts), so even two runners would not duplicate an execution. All state is in the store, so a
 * restart resumes where the last tick left off.
 *
 * Each tick (jobs.tickMs):
 * - SCHEDULED jobs whose schedulingConfig.startTime passed start; IN_PROGRESS jobs past endTime end as
 *   endBehavior says (STOP_ROLLOUT, the default: no more executions; CANCEL; FORCE_CANCEL);
 * - each IN_PROGRESS job launches what its jobExecutionsRolloutConfig allows in the current job minute, and
 *   only inside one of its schedulingConfig.maintenanceWindows when it has any (windows.ts)
 *   (maximumPerMinute; exponentialRate from baseRatePerMinute, multiplied by incrementFactor whenever
 *   rateIncreaseCriteria's notified or succeeded count is reached, never above maximumPerMinute);
 * - IN_PROGRESS executions past a deadline become TIMED_OUT, the reason in statusDetails
 *   (`thingstead:timedOutBy`: step | inProgress | watchdog, `thingstead:timeoutReason`: a sentence).
 * Change events `thing` and `membership` (src/registry) bring continuous jobs to things that joined a
 * target group, and mark REMOVED the executions of things that left.
 */
import type pg from 'pg';
import type { ChangeChannel } from '../events/index.js';
import type { Database } from '../store/index.js';
import { timing, type JobsContext } from './context.js';
import { expiredTimer, serviceTransition } from './executions.js';
import type { Reactions } from './reactions.js';
import { scheduleTime } from './service.js';
import { compileWindows } from './windows.js';
import type { JobRecord, RolloutState } from './types.js';

/** Executions created per job per step at most (a step claims them in one transaction, store.launch). */
const BATCH = 500;
/**
 * Advisory locks are per database, not per schema: the key takes the schema in, so deployments (and test
 * runs) sharing one PostgreSQL database in schemas of their own do not wait on each other's runner.
 */
const LOCK_KEY = 'thingstead-jobs-rollout:';

export interface Rollout {
  /** Look at a job soon (created, updated, a target added). */
  kick(jobId: string): void;
  /** Run one tick now and wait for it (tests, the CLI's restart checks). */
  tick(): Promise<void>;
  /** True while this process runs the rollout. */
  isLeader(): boolean;
  close(): Promise<void>;
}

export function startRollout(
  ctx: JobsContext,
  reactions: Reactions,
  options: {
    db: Database;
    events?: ChangeChannel | undefined;
    tickMs: number;
    /** Cluster mode: the node runs the rollout while it holds `jobs.rollout` (instead of the lock below). */
    runsHere?: ((task: string) => boolean) | undefined;
  },
): Rollout {
  const { store } = ctx;
  const log = ctx.logger;
  let leader = options.db.kind === 'sqlite';
  let lockClient: pg.PoolClient | null = null;
  let closed = false;
  /** One step at a time per job. */
  const steps = new Map<string, Promise<void>>();
  /** The batch of each job whose notifications are going out (reactions.launched never throws). */
  const announcing = new Map<string, Promise<void>>();
  let ticking: Promise<void> | null = null;

  const runsHere = options.runsHere;
  const leads = () => (runsHere ? runsHere('jobs.rollout') : leader);

  async function acquire(): Promise<void> {
    if (runsHere || leader || options.db.kind !== 'postgres' || closed) return;
    try {
      lockClient ??= await options.db.raw.connect();
      lockClient.on('error', () => undefined);
      const { rows } = await lockClient.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1 || current_schema())) AS ok',
        [LOCK_KEY],
      );
      leader = rows[0]?.ok === true;
      if (leader) log.info('jobs rollout runner: this process leads');
    } catch (err) {
      log.warn({ err }, 'jobs rollout lock unavailable');
      lockClient?.release(true);
      lockClient = null;
      leader = false;
    }
  }

  function rateOf(job: JobRecord, r: RolloutState, succeeded: number): { rate: number; state: RolloutState } {
    const config = job.config.jobExecutionsRolloutConfig;
    const max = config?.maximumPerMinute ?? Infinity;
    const exp = config?.exponentialRate;
    if (!exp) return { rate: max, state: r };
    let rate = r.rate ?? exp.baseRatePerMinute;
    let lastIncrease = r.lastIncrease;
    const c = exp.rateIncreaseCriteria;
    const byNotified =
      c.numberOfNotifiedThings !== undefined && r.created - lastIncrease.notified >= c.numberOfNotifiedThings;
    const bySucceeded =
      c.numberOfSucceededThings !== undefined &&
      succeeded - lastIncrease.succeeded >= c.numberOfSucceededThings;
    if ((byNotified || bySucceeded) && rate < max) {
      rate = Math.min(max, Math.max(rate + 1, Math.floor(rate * exp.incrementFactor)));
      lastIncrease = { notified: r.created, succeeded };
    }
    return { rate, state: { ...r, rate, lastIncrease } };
  }

  /** The per-minute rate in force (no change within a job minute). */
  function currentRate(job: JobRecord, r: RolloutState): number {
    const config = job.config.jobExecutionsRolloutConfig;
    const max = config?.maximumPerMinute ?? Infinity;
    return config?.exponentialRate ? Math.min(max, r.rate ?? config.exponentialRate.baseRatePerMinute) : max;
  }

  /** Launch what the job's rate allows now; record the rollout state. */
  async function step(jobId: string): Promise<void> {
    const job = await store.getJob(jobId);
    if (!job || job.status !== 'IN_PROGRESS' || job.rollout.stopped) return;
    const now = ctx.now();
    // schedulingConfig.maintenanceWindows: executions are launched only inside a window (every tick looks).
    if (!compileWindows(job.config.schedulingConfig?.maintenanceWindows).isOpen(now)) return;
    let r = job.rollout;
    let rate: number;
    if (now - r.windowStart >= ctx.minuteMs) {
      // A new job minute: the rate may rise (exponentialRate), and takes effect for the whole minute.
      r = { ...r, windowStart: now, windowCount: 0 };
      const succeeded = job.config.jobExecutionsRolloutConfig?.exponentialRate
        ? ((await store.counts(jobId)).SUCCEEDED ?? 0)
        : 0;
      ({ rate, state: r } = rateOf(job, r, succeeded));
    } else rate = currentRate(job, r);
    const allowance = Math.min(BATCH, rate === Infinity ? BATCH : Math.max(0, rate - r.windowCount));
    const created = await store.launch(jobId, allowance, now);
    // A job minute starts with its first launch (not at job creation or an idle tick), so no span of one
    // job minute ever holds more than the rate.
    if (r.windowCount === 0 && created.length > 0) r = { ...r, windowStart: now };
    // A full batch: there may be more, and the next step follows at once; otherwise count what is left.
    const exhausted = created.length === BATCH ? false : (await store.pendingCount(jobId)) === 0;
    const unchanged = created.length === 0 && exhausted === job.rollout.exhausted && r === job.rollout;
    if (!unchanged) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const fresh = attempt === 0 ? job : await store.getJob(jobId);
        if (!fresh) break;
        const next: JobRecord = {
          ...fresh,
          rollout: {
            ...r,
            created: fresh.rollout.created + created.length,
            windowCount: r.windowCount + created.length,
            exhausted,
            ...(fresh.rollout.stopped ? { stopped: true } : {}),
          },
          version: fresh.version + 1,
        };
        if (await store.putJob(next, fresh.version)) break;
      }
    }
    // Notify the batch while the next one is claimed: at most one batch per job is being announced (the
    // previous one is waited for first), so a slow broker holds the rollout back instead of queueing.
    const previous = announcing.get(jobId);
    if (previous) await previous;
    const announced = reactions.launched(created).finally(() => {
      if (announcing.get(jobId) === announced) announcing.delete(jobId);
    });
    announcing.set(jobId, announced);
    if (exhausted) {
      await announced;
      await reactions.checkJob(jobId);
    }
    // More may be launched at once (no rate, or a rate left in this minute): go on without waiting a tick.
    if (created.length === BATCH && !closed) kick(jobId);
  }

  function kick(jobId: string): void {
    if (!leads() || closed) return;
    const previous = steps.get(jobId) ?? Promise.resolve();
    const next = previous
      .then(() => step(jobId))
      .catch((err: unknown) => log.warn({ err, jobId }, 'job rollout step failed'))
      .finally(() => {
        if (steps.get(jobId) === next) steps.delete(jobId);
      });
    steps.set(jobId, next);
  }

  /** Start, end or advance one active job. */
  async function tend(job: JobRecord, now: number): Promise<void> {
    if (job.status === 'DELETION_IN_PROGRESS') {
      // A DeleteJob that did not finish (the process stopped in the middle): finish it.
      if (now - job.updatedAt > 10 * options.tickMs) await store.deleteJob(job.jobId);
      return;
    }
    const start = scheduleTime(job.config, 'startTime');
    const end = scheduleTime(job.config, 'endTime');
    if (job.status === 'SCHEDULED') {
      if (start !== null && start > now) return;
      const started: JobRecord = { ...job, status: 'IN_PROGRESS', updatedAt: now, version: job.version + 1 };
      if (!(await store.putJob(started, job.version))) return;
      job = started;
    }
    if (end !== null && end <= now && !job.rollout.stopped) {
      const behavior = job.config.schedulingConfig?.endBehavior ?? 'STOP_ROLLOUT';
      if (behavior === 'STOP_ROLLOUT') {
        const stopped: JobRecord = {
          ...job,
          rollout: { ...job.rollout, stopped: true },
          updatedAt: now,
          version: job.version + 1,
        };
        if (await store.putJob(stopped, job.version)) {
          await store.dropPendingTargets(job.jobId);
          await reactions.checkJob(job.jobId);
        }
      } else {
        await reactions.cancelJob(job.jobId, {
          force: behavior === 'FORCE_CANCEL',
          reasonCode: 'SCHEDULE_ENDED',
          comment: `schedulingConfig.endTime ${job.config.schedulingConfig?.endTime} passed (endBehavior ${behavior})`,
        });
      }
      return;
    }
    kick(job.jobId);
  }

  async function fireTimers(): Promise<void> {
    const now = ctx.now();
    const due = await store.due(now, 500);
    for (const e of due) {
      const which = expiredTimer(e, now);
      if (!which) continue;
      const job = await store.getJob(e.jobId);
      const minutes = job?.config.timeoutConfig?.inProgressTimeoutInMinutes;
      const reason =
        which === 'step'
          ? 'The step timer (stepTimeoutInMinutes) expired before the device reported again'
          : which === 'inProgress'
            ? `The job's timeoutConfig.inProgressTimeoutInMinutes (${minutes}) expired`
            : `No update for ${Math.round(ctx.watchdogMs / ctx.minuteMs)} minutes: the watchdog (jobs.watchdogMinutes) timed it out`;
      const next = serviceTransition(e, 'TIMED_OUT', timing(ctx, job), {
        details: { 'thingstead:timedOutBy': which, 'thingstead:timeoutReason': reason },
      });
      if (await store.putExecution(next, e.versionNumber)) await reactions.executionChanged(e, next);
    }
  }

  async function runTick(): Promise<void> {
    await acquire();
    if (!leads() || closed) return;
    const now = ctx.now();
    for (const job of await store.activeJobs()) await tend(job, now);
    await Promise.all([...steps.values()]);
    await Promise.all([...announcing.values()]);
    await fireTimers();
  }

  function tick(): Promise<void> {
    ticking ??= runTick()
      .catch((err: unknown) => log.warn({ err }, 'jobs rollout tick failed'))
      .finally(() => {
        ticking = null;
      });
    return ticking;
  }

  /** A thing's registry state changed: continuous jobs may now reach it, or no longer. */
  async function thingChanged(thingName: string): Promise<void> {
    if (!leads()) return;
    const jobs = (await store.activeJobs()).filter(
      (j) => j.targetSelection === 'CONTINUOUS' && j.status !== 'DELETION_IN_PROGRESS' && !j.rollout.stopped,
    );
    if (!jobs.length) return;
    const exists = await ctx.targets.thingExists(thingName);
    const groups = exists ? await ctx.targets.groupsOf(thingName) : new Set<string>();
    const reaching = exists ? new Set(await store.jobsReaching(thingName, [...groups])) : new Set<string>();
    for (const job of jobs) {
      if (reaching.has(job.jobId)) {
        if ((await store.addTargets(job.jobId, [thingName])) > 0) {
          const r = { ...job.rollout, exhausted: false };
          await store.putJob({ ...job, rollout: r, version: job.version + 1 }, job.version);
          kick(job.jobId);
        }
        continue;
      }
      await store.dropTarget(job.jobId, thingName);
      const e = await store.getExecution(job.jobId, thingName);
      if (!e || (e.status !== 'QUEUED' && e.status !== 'IN_PROGRESS')) continue;
      const removed = serviceTransition(e, 'REMOVED', timing(ctx, job));
      if (await store.putExecution(removed, e.versionNumber)) await reactions.executionChanged(e, removed);
    }
  }

  const unsubscribe = options.events?.subscribe(['thing', 'membership'], async (e) => {
    if (e.kind === 'resync') return;
    const thing = e.kind === 'thing' ? e.name : e.thing;
    await thingChanged(thing).catch((err: unknown) =>
      log.warn({ err, thingName: thing }, 'continuous job membership update failed'),
    );
  });

  const timer = setInterval(() => void tick(), options.tickMs);
  timer.unref();
  void tick();

  return {
    kick,
    tick,
    isLeader: leads,
    async close() {
      closed = true;
      clearInterval(timer);
      unsubscribe?.();
      await ticking;
      await Promise.all([...steps.values()]);
      await Promise.all([...announcing.values()]);
      if (lockClient) {
        await lockClient
          .query('SELECT pg_advisory_unlock(hashtext($1 || current_schema()))', [LOCK_KEY])
          .catch(() => undefined);
        lockClient.release();
        lockClient = null;
      }
    },
  };
}
