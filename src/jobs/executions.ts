/**
 * The job execution state machine (reference §8.3), as pure functions of a record and a request: they
 * return the next record or throw the catalog error, and never touch the store (the service writes the
 * result with an optimistic version check, and answers VersionMismatch when it lost a race).
 *
 *   QUEUED -> IN_PROGRESS (device: start-next or update) -> SUCCEEDED | FAILED | REJECTED (device)
 *   QUEUED -> SUCCEEDED | FAILED | REJECTED (device; accepted by AWS [U], accepted here)
 *   IN_PROGRESS -> IN_PROGRESS (device: new statusDetails or step timer)
 *   QUEUED | IN_PROGRESS -> TIMED_OUT (service: step timer, in-progress timeout, watchdog), CANCELED, REMOVED
 *   terminal -> anything: InvalidStateTransition
 *
 * `versionNumber` goes up by one on every change, whoever makes it. Timers (epoch ms deadlines) exist only
 * while IN_PROGRESS: the step timer (stepTimeoutInMinutes, -1 clears it), the job's in-progress timeout
 * (set once, when the execution starts), and the watchdog (moved forward by every update).
 */
import { E } from '../errors/index.js';
import { EXECUTION_STATUSES, isTerminal, type ExecutionRecord, type ExecutionStatus } from './types.js';

/** What a device may set (reference §5). */
export const DEVICE_STATUSES: ReadonlySet<ExecutionStatus> = new Set([
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'REJECTED',
]);

export interface Timing {
  readonly now: number;
  /** One job minute in ms (config jobs.minuteMs). */
  readonly minuteMs: number;
  /** Watchdog period in ms; 0: off. */
  readonly watchdogMs: number;
  /** The job's timeoutConfig.inProgressTimeoutInMinutes. */
  readonly inProgressTimeoutMinutes?: number | undefined;
}

export interface DeviceUpdate {
  readonly status: string;
  readonly statusDetails?: Readonly<Record<string, string>> | undefined;
  readonly expectedVersion?: number | undefined;
  readonly stepTimeoutInMinutes?: number | undefined;
}

const DETAIL_KEY = /^[a-zA-Z0-9:_-]{1,128}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws InvalidRequest unless statusDetails is a map of valid keys to valid string values (reference §5). */
export function checkStatusDetails(details: unknown): Record<string, string> {
  if (typeof details !== 'object' || details === null || Array.isArray(details))
    throw E.JobStatusDetails({ problem: 'must be an object of strings' });
  for (const [k, v] of Object.entries(details)) {
    if (!DETAIL_KEY.test(k)) throw E.JobStatusDetails({ problem: `key '${k.slice(0, 140)}' is invalid` });
    if (typeof v !== 'string' || v.length < 1 || v.length > 1024 || CONTROL.test(v))
      throw E.JobStatusDetails({ problem: `value of '${k}' is invalid` });
  }
  return details as Record<string, string>;
}

/** Throws InvalidRequest unless `m` is a step timeout in minutes: 1..10080, or -1 to cancel (reference §5). */
export function checkStepTimeout(m: unknown): number | undefined {
  if (m === undefined || m === null) return undefined;
  if (typeof m !== 'number' || !Number.isInteger(m) || (m !== -1 && (m < 1 || m > 10_080)))
    throw E.JobsRequestInvalid({ problem: 'stepTimeoutInMinutes must be an integer from 1 to 10080, or -1' });
  return m;
}

const watchdog = (t: Timing) => (t.watchdogMs > 0 ? t.now + t.watchdogMs : null);

function stepDeadline(current: number | null, minutes: number | undefined, t: Timing): number | null {
  if (minutes === undefined) return current;
  return minutes === -1 ? null : t.now + minutes * t.minuteMs;
}

/** A new QUEUED attempt. */
export function newExecution(
  jobId: string,
  thingName: string,
  now: number,
  attempt: { executionNumber: number; retryAttempt: number } = { executionNumber: 1, retryAttempt: 0 },
): ExecutionRecord {
  return {
    jobId,
    thingName,
    executionNumber: attempt.executionNumber,
    status: 'QUEUED',
    statusDetails: {},
    versionNumber: 1,
    queuedAt: now,
    startedAt: null,
    lastUpdatedAt: now,
    stepDeadline: null,
    progressDeadline: null,
    watchdogDeadline: null,
    retryAttempt: attempt.retryAttempt,
    forceCanceled: false,
  };
}

/** Move to `status`, keeping the rest; timers are set for IN_PROGRESS and cleared otherwise. */
function moveTo(
  e: ExecutionRecord,
  status: ExecutionStatus,
  t: Timing,
  changes: { statusDetails?: Readonly<Record<string, string>> | undefined; stepMinutes?: number | undefined },
): ExecutionRecord {
  const starting = status === 'IN_PROGRESS' && e.status === 'QUEUED';
  const inProgress = status === 'IN_PROGRESS';
  const timeout = t.inProgressTimeoutMinutes;
  return {
    ...e,
    status,
    statusDetails: changes.statusDetails ?? e.statusDetails,
    versionNumber: e.versionNumber + 1,
    startedAt: starting ? t.now : e.startedAt,
    lastUpdatedAt: t.now,
    stepDeadline: inProgress ? stepDeadline(e.stepDeadline, changes.stepMinutes, t) : null,
    progressDeadline: !inProgress
      ? null
      : starting
        ? timeout
          ? t.now + timeout * t.minuteMs
          : null
        : e.progressDeadline,
    watchdogDeadline: inProgress ? watchdog(t) : null,
  };
}

/**
 * A device's UpdateJobExecution. Order of checks: the version (VersionMismatch), then the state machine
 * (InvalidStateTransition), then the request's members (InvalidRequest).
 */
export function applyDeviceUpdate(e: ExecutionRecord, u: DeviceUpdate, t: Timing): ExecutionRecord {
  if (u.expectedVersion !== undefined && u.expectedVersion !== e.versionNumber)
    throw E.JobExecutionVersion({ expected: u.expectedVersion, actual: e.versionNumber });
  const to = u.status as ExecutionStatus;
  if (!EXECUTION_STATUSES.includes(to))
    throw E.JobsRequestInvalid({
      problem: `status must be one of ${[...DEVICE_STATUSES].join(', ')}`,
    });
  if (isTerminal(e.status) || !DEVICE_STATUSES.has(to))
    throw E.JobExecutionTransition({ jobId: e.jobId, thingName: e.thingName, from: e.status, to });
  const statusDetails = u.statusDetails === undefined ? undefined : checkStatusDetails(u.statusDetails);
  const stepMinutes = checkStepTimeout(u.stepTimeoutInMinutes);
  return moveTo(e, to, t, { statusDetails, stepMinutes });
}

/** StartNextPendingJobExecution on a QUEUED execution (an IN_PROGRESS one is returned unchanged). */
export function startExecution(
  e: ExecutionRecord,
  request: {
    statusDetails?: Readonly<Record<string, string>> | undefined;
    stepTimeoutInMinutes?: number | undefined;
  },
  t: Timing,
): ExecutionRecord {
  if (e.status !== 'QUEUED') return e;
  const statusDetails =
    request.statusDetails === undefined ? undefined : checkStatusDetails(request.statusDetails);
  return moveTo(e, 'IN_PROGRESS', t, {
    statusDetails,
    stepMinutes: checkStepTimeout(request.stepTimeoutInMinutes),
  });
}

/**
 * A transition the service makes (TIMED_OUT, CANCELED, REMOVED): only from QUEUED or IN_PROGRESS.
 * `details` are merged into statusDetails (the reason a timer fired, a cancel's statusDetails).
 */
export function serviceTransition(
  e: ExecutionRecord,
  status: 'TIMED_OUT' | 'CANCELED' | 'REMOVED',
  t: Timing,
  options: { details?: Readonly<Record<string, string>>; forceCanceled?: boolean } = {},
): ExecutionRecord {
  if (isTerminal(e.status))
    throw E.JobExecutionTransition({ jobId: e.jobId, thingName: e.thingName, from: e.status, to: status });
  const next = moveTo(e, status, t, {
    statusDetails: options.details ? { ...e.statusDetails, ...options.details } : undefined,
  });
  return options.forceCanceled ? { ...next, forceCanceled: true } : next;
}

/** Which deadline of an IN_PROGRESS execution has passed at `now`, if any. */
export function expiredTimer(e: ExecutionRecord, now: number): 'step' | 'inProgress' | 'watchdog' | null {
  if (e.status !== 'IN_PROGRESS') return null;
  if (e.stepDeadline !== null && e.stepDeadline <= now) return 'step';
  if (e.progressDeadline !== null && e.progressDeadline <= now) return 'inProgress';
  if (e.watchdogDeadline !== null && e.watchdogDeadline <= now) return 'watchdog';
  return null;
}

/** The next pending execution: IN_PROGRESS ones first, then QUEUED, each oldest first (reference §8.3). */
export function nextPending(pending: readonly ExecutionRecord[]): ExecutionRecord | null {
  const byAge = (a: ExecutionRecord, b: ExecutionRecord) =>
    a.queuedAt - b.queuedAt || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
  const inProgress = pending.filter((e) => e.status === 'IN_PROGRESS').sort(byAge);
  if (inProgress[0]) return inProgress[0];
  return [...pending].filter((e) => e.status === 'QUEUED').sort(byAge)[0] ?? null;
}

/** Seconds until the earliest of the step timer and the in-progress timeout (control/data plane field). */
export function secondsBeforeTimedOut(e: ExecutionRecord, now: number): number | undefined {
  if (e.status !== 'IN_PROGRESS') return undefined;
  const ds = [e.stepDeadline, e.progressDeadline].filter((d): d is number => d !== null);
  if (!ds.length) return undefined;
  return Math.max(0, Math.round((Math.min(...ds) - now) / 1000));
}
