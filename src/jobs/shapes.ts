/**
 * Wire shapes. Control plane (reference §3.8): timestamps as Date, which the API writes as epoch seconds;
 * statusDetails wrapped in `detailsMap`. Jobs data plane (§5): times as integer epoch seconds, jobDocument a
 * JSON string. MQTT (§8.3): integer epoch seconds, jobDocument a JSON object.
 */
import { secondsBeforeTimedOut } from './executions.js';
import { awsScheduleTime, compileWindows } from './windows.js';
import type { ExecutionRecord, ExecutionStatus, JobRecord } from './types.js';

const date = (ms: number | null) => (ms === null ? undefined : new Date(ms));
export const seconds = (ms: number) => Math.floor(ms / 1000);
const secondsOrUndefined = (ms: number | null) => (ms === null ? undefined : seconds(ms));

export type Counts = Partial<Record<ExecutionStatus, number>>;

/** `targets`: the job's target ARNs (JobsStore.targetArns), listed as processingTargets while it rolls out. */
export function jobProcessDetails(job: JobRecord, counts: Counts, targets: readonly string[]) {
  const n = (s: ExecutionStatus) => counts[s] ?? 0;
  return {
    ...(job.rollout.exhausted && job.targetSelection === 'SNAPSHOT'
      ? {}
      : { processingTargets: [...targets] }),
    numberOfCanceledThings: n('CANCELED'),
    numberOfSucceededThings: n('SUCCEEDED'),
    numberOfFailedThings: n('FAILED'),
    numberOfRejectedThings: n('REJECTED'),
    numberOfQueuedThings: n('QUEUED'),
    numberOfInProgressThings: n('IN_PROGRESS'),
    numberOfRemovedThings: n('REMOVED'),
    numberOfTimedOutThings: n('TIMED_OUT'),
  };
}

/** The control plane's Job (DescribeJob); `targets` are its target ARNs (JobsStore.targetArns). */
export function jobShape(
  job: JobRecord,
  counts: Counts,
  targets: readonly string[],
  arn: (type: string, name: string) => string,
  now: number,
) {
  const c = job.config;
  return {
    jobArn: arn('job', job.jobId),
    jobId: job.jobId,
    targetSelection: job.targetSelection,
    status: job.status,
    forceCanceled: job.forceCanceled,
    ...(job.reasonCode !== null ? { reasonCode: job.reasonCode } : {}),
    ...(job.comment !== null ? { comment: job.comment } : {}),
    targets: [...targets],
    ...(job.description !== null ? { description: job.description } : {}),
    ...(c.presignedUrlConfig ? { presignedUrlConfig: c.presignedUrlConfig } : {}),
    ...(c.jobExecutionsRolloutConfig ? { jobExecutionsRolloutConfig: c.jobExecutionsRolloutConfig } : {}),
    ...(c.abortConfig ? { abortConfig: c.abortConfig } : {}),
    createdAt: date(job.createdAt),
    lastUpdatedAt: date(job.updatedAt),
    ...(job.completedAt !== null ? { completedAt: date(job.completedAt) } : {}),
    jobProcessDetails: jobProcessDetails(job, counts, targets),
    ...(c.timeoutConfig ? { timeoutConfig: c.timeoutConfig } : {}),
    ...(c.namespaceId ? { namespaceId: c.namespaceId } : {}),
    ...(c.jobTemplateArn ? { jobTemplateArn: c.jobTemplateArn } : {}),
    ...(c.jobExecutionsRetryConfig ? { jobExecutionsRetryConfig: c.jobExecutionsRetryConfig } : {}),
    ...(c.documentParameters ? { documentParameters: c.documentParameters } : {}),
    isConcurrent: false,
    ...(c.schedulingConfig ? { schedulingConfig: c.schedulingConfig } : {}),
    ...(c.schedulingConfig?.maintenanceWindows?.length
      ? {
          // The next seven window starts (AWS: "the next seven maintenance window occurrences").
          scheduledJobRollouts: compileWindows(c.schedulingConfig.maintenanceWindows)
            .next(now, 7)
            .map((t) => ({ startTime: awsScheduleTime(t) })),
        }
      : {}),
    ...(c.destinationPackageVersions ? { destinationPackageVersions: c.destinationPackageVersions } : {}),
  };
}

/** ListJobs items. */
export function jobSummaryShape(job: JobRecord, arn: (type: string, name: string) => string) {
  const group = job.targetCount === 1 && job.firstTarget.includes(':thinggroup/') ? job.firstTarget : null;
  return {
    jobArn: arn('job', job.jobId),
    jobId: job.jobId,
    ...(group ? { thingGroupId: group.slice(group.indexOf(':thinggroup/') + 12) } : {}),
    targetSelection: job.targetSelection,
    status: job.status,
    createdAt: date(job.createdAt),
    lastUpdatedAt: date(job.updatedAt),
    ...(job.completedAt !== null ? { completedAt: date(job.completedAt) } : {}),
    isConcurrent: false,
  };
}

/** Control-plane JobExecution (DescribeJobExecution). */
export function controlExecutionShape(e: ExecutionRecord, thingArn: string, now: number) {
  const left = secondsBeforeTimedOut(e, now);
  return {
    jobId: e.jobId,
    status: e.status,
    forceCanceled: e.forceCanceled,
    statusDetails: { detailsMap: { ...e.statusDetails } },
    thingArn,
    queuedAt: date(e.queuedAt),
    ...(e.startedAt !== null ? { startedAt: date(e.startedAt) } : {}),
    lastUpdatedAt: date(e.lastUpdatedAt),
    executionNumber: e.executionNumber,
    versionNumber: e.versionNumber,
    ...(left !== undefined ? { approximateSecondsBeforeTimedOut: left } : {}),
  };
}

/** Control-plane JobExecutionSummary. */
export function controlSummaryShape(e: ExecutionRecord) {
  return {
    status: e.status,
    queuedAt: date(e.queuedAt),
    ...(e.startedAt !== null ? { startedAt: date(e.startedAt) } : {}),
    lastUpdatedAt: date(e.lastUpdatedAt),
    executionNumber: e.executionNumber,
    retryAttempt: e.retryAttempt,
  };
}

/** Device-side JobExecutionSummary (data plane and MQTT: integer epoch seconds). */
export function deviceSummaryShape(e: ExecutionRecord) {
  return {
    jobId: e.jobId,
    queuedAt: seconds(e.queuedAt),
    ...(e.startedAt !== null ? { startedAt: seconds(e.startedAt) } : {}),
    lastUpdatedAt: seconds(e.lastUpdatedAt),
    versionNumber: e.versionNumber,
    executionNumber: e.executionNumber,
  };
}

/**
 * Device-side JobExecution. `document` is the substituted job document text, or null to leave it out;
 * `asObject` gives it as a JSON object (MQTT) instead of a string (HTTP data plane).
 */
export function deviceExecutionShape(
  e: ExecutionRecord,
  document: string | null,
  options: { asObject: boolean; now: number },
) {
  const left = secondsBeforeTimedOut(e, options.now);
  return {
    jobId: e.jobId,
    thingName: e.thingName,
    status: e.status,
    statusDetails: { ...e.statusDetails },
    queuedAt: seconds(e.queuedAt),
    ...(e.startedAt !== null ? { startedAt: secondsOrUndefined(e.startedAt) } : {}),
    lastUpdatedAt: seconds(e.lastUpdatedAt),
    ...(left !== undefined && !options.asObject ? { approximateSecondsBeforeTimedOut: left } : {}),
    versionNumber: e.versionNumber,
    executionNumber: e.executionNumber,
    ...(document !== null ? { jobDocument: options.asObject ? JSON.parse(document) : document } : {}),
  };
}

/** JobExecutionState (UpdateJobExecution's includeJobExecutionState). */
export function executionStateShape(e: ExecutionRecord) {
  return { status: e.status, statusDetails: { ...e.statusDetails }, versionNumber: e.versionNumber };
}
