/**
 * The jobs context's records (reference §3.5, §3.8, §8.3). Times are epoch milliseconds inside the
 * context; the API and MQTT layers turn them into epoch seconds on the way out (reference §12.1).
 */

/** JobStatus (reference §3.10). */
export type JobStatus = 'IN_PROGRESS' | 'CANCELED' | 'COMPLETED' | 'DELETION_IN_PROGRESS' | 'SCHEDULED';
export const JOB_STATUSES: readonly JobStatus[] = [
  'IN_PROGRESS',
  'CANCELED',
  'COMPLETED',
  'DELETION_IN_PROGRESS',
  'SCHEDULED',
];

/** JobExecutionStatus (reference §3.10). */
export type ExecutionStatus =
  'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED' | 'REMOVED' | 'CANCELED';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = [
  'QUEUED',
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'REMOVED',
  'CANCELED',
];

/** Terminal execution states (reference §8.3 state machine): no update leaves them. */
export const TERMINAL: ReadonlySet<ExecutionStatus> = new Set([
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'REMOVED',
  'CANCELED',
]);
export const isTerminal = (s: ExecutionStatus): boolean => TERMINAL.has(s);

export type TargetSelection = 'SNAPSHOT' | 'CONTINUOUS';

export interface RolloutConfig {
  readonly maximumPerMinute?: number;
  readonly exponentialRate?: {
    readonly baseRatePerMinute: number;
    readonly incrementFactor: number;
    readonly rateIncreaseCriteria: {
      readonly numberOfNotifiedThings?: number;
      readonly numberOfSucceededThings?: number;
    };
  };
}

export interface AbortCriteria {
  readonly failureType: 'FAILED' | 'REJECTED' | 'TIMED_OUT' | 'ALL';
  readonly action: 'CANCEL';
  readonly thresholdPercentage: number;
  readonly minNumberOfExecutedThings: number;
}

export interface RetryCriteria {
  readonly failureType: 'FAILED' | 'TIMED_OUT' | 'ALL';
  readonly numberOfRetries: number;
}

export interface SchedulingConfig {
  /** AWS's `yyyy-MM-dd'T'HH:mm` (UTC); any Date.parse-able ISO text is accepted. */
  readonly startTime?: string;
  readonly endTime?: string;
  readonly endBehavior?: 'STOP_ROLLOUT' | 'CANCEL' | 'FORCE_CANCEL';
  readonly maintenanceWindows?: readonly { startTime: string; durationInMinutes: number }[];
}

/** Everything of CreateJob/UpdateJob that is carried as given (the Job shape's configuration members). */
export interface JobConfig {
  readonly presignedUrlConfig?: { roleArn?: string; expiresInSec?: number };
  readonly jobExecutionsRolloutConfig?: RolloutConfig;
  readonly abortConfig?: { readonly criteriaList: readonly AbortCriteria[] };
  readonly timeoutConfig?: { readonly inProgressTimeoutInMinutes?: number };
  readonly jobExecutionsRetryConfig?: { readonly criteriaList: readonly RetryCriteria[] };
  readonly schedulingConfig?: SchedulingConfig;
  readonly namespaceId?: string;
  readonly jobTemplateArn?: string;
  readonly documentParameters?: Readonly<Record<string, string>>;
  readonly destinationPackageVersions?: readonly string[];
  readonly tags?: readonly { Key: string; Value?: string }[];
}

/** Rollout progress, owned by the rollout runner (rollout.ts). */
export interface RolloutState {
  /** Executions created so far (first attempts; retries are not rollout). */
  readonly created: number;
  /** Current rate per minute (exponential rollouts), or null for maximumPerMinute / unlimited. */
  readonly rate: number | null;
  /** Start of the current one-minute window (epoch ms) and executions created in it. */
  readonly windowStart: number;
  readonly windowCount: number;
  /** Notified / succeeded counts when the rate last rose (exponential rollouts). */
  readonly lastIncrease: { readonly notified: number; readonly succeeded: number };
  /** True once every target known so far was launched (snapshot jobs can then complete). */
  readonly exhausted: boolean;
  /** Set when schedulingConfig.endTime passed with STOP_ROLLOUT: no more executions are created. */
  readonly stopped?: boolean;
}

export interface JobRecord {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly targetSelection: TargetSelection;
  /**
   * How many target ARNs (things and thing groups) the job was given, and the first of them. The ARNs
   * themselves are rows of their own (`JobsStore.targetArns`): a job row never carries a 10,000-ARN list.
   */
  readonly targetCount: number;
  readonly firstTarget: string;
  /** The document before substitution (`${aws:iot:parameter:name}` placeholders kept). */
  readonly document: string;
  readonly documentSource: string | null;
  readonly description: string | null;
  readonly config: JobConfig;
  readonly forceCanceled: boolean;
  readonly reasonCode: string | null;
  readonly comment: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly completedAt: number | null;
  /** Row version for optimistic writes (not an AWS field). */
  readonly version: number;
  readonly rollout: RolloutState;
}

export interface ExecutionRecord {
  readonly jobId: string;
  readonly thingName: string;
  /** 1 for the first attempt; each retry is a new execution with the next number. */
  readonly executionNumber: number;
  readonly status: ExecutionStatus;
  readonly statusDetails: Readonly<Record<string, string>>;
  /** Goes up by one on every change (device update or service transition). */
  readonly versionNumber: number;
  readonly queuedAt: number;
  readonly startedAt: number | null;
  readonly lastUpdatedAt: number;
  /** Step timer (stepTimeoutInMinutes), job in-progress timeout, and the watchdog deadline (epoch ms). */
  readonly stepDeadline: number | null;
  readonly progressDeadline: number | null;
  readonly watchdogDeadline: number | null;
  readonly retryAttempt: number;
  readonly forceCanceled: boolean;
}

export interface TemplateRecord {
  readonly jobTemplateId: string;
  readonly description: string | null;
  readonly document: string | null;
  readonly documentSource: string | null;
  readonly config: JobConfig;
  readonly createdAt: number;
}
