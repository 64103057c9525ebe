import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/index.js';
import type { ResourceTags } from '../tags/index.js';
import type { Timing } from './executions.js';
import type { JobsStore } from './store.js';
import type { TargetResolver } from './targets.js';
import type { JobConfig, JobRecord } from './types.js';

/** What the parts of the jobs context share (service, device side, reactions, rollout, MQTT). */
export interface JobsContext {
  readonly store: JobsStore;
  /** Usage metering (src/metering): job executions created, per thing. Synchronous, must not throw. */
  readonly onExecutionsCreated?: ((thingNames: readonly string[]) => void) | undefined;
  readonly targets: TargetResolver;
  readonly logger: Logger;
  readonly now: () => number;
  /** One job minute in ms (jobs.minuteMs). */
  readonly minuteMs: number;
  /** Watchdog period in ms (jobs.watchdogMinutes × minuteMs); 0: off. */
  readonly watchdogMs: number;
  readonly documentFetchTimeoutMs: number;
  /** `arn:aws:iot:{region}:{account}:{type}/{name}`. */
  arn(type: string, name: string): string;
  /** Publish as the platform (notify, notify-next, events), QoS 1, not retained. */
  publish(topic: string, payload: unknown): void;
  /** Whether UpdateEventConfigurations switched the event type on (the registry owns the setting). */
  eventsEnabled(type: 'JOB' | 'JOB_EXECUTION'): boolean;
  /** Delivery-time document hook (JobsOptions.deliverDocument); absent: the document as substituted. */
  readonly deliverDocument?: DeliverDocument;
  /** Tags of jobs and job templates (src/tags): checked and added on create, removed on delete. */
  readonly tags?: ResourceTags;
}

/**
 * Called each time a job document is handed to a device (notify-next, start-next, describe, update): the
 * OTA context resolves `${aws:iot:s3-presigned-url:...}` there, so every URL is fresh and expires
 * `presignedUrlConfig.expiresInSec` after this delivery. Synchronous and cheap; must not throw.
 */
export type DeliverDocument = (
  document: string,
  presignedUrlConfig: JobConfig['presignedUrlConfig'],
) => string;

/** The timing a state-machine step needs, for a job. */
export const timing = (ctx: JobsContext, job: JobRecord | null): Timing => ({
  now: ctx.now(),
  minuteMs: ctx.minuteMs,
  watchdogMs: ctx.watchdogMs,
  inProgressTimeoutMinutes: job?.config.timeoutConfig?.inProgressTimeoutInMinutes,
});

/** Publish a `$aws/events/job...` event when its type is enabled (reference §8.3). Never throws. */
export function emitEvent(
  ctx: JobsContext,
  type: 'JOB' | 'JOB_EXECUTION',
  topic: string,
  payload: Record<string, unknown>,
): void {
  if (!ctx.eventsEnabled(type)) return;
  try {
    ctx.publish(topic, {
      eventType: type,
      eventId: randomUUID().replace(/-/g, ''),
      timestamp: Math.floor(ctx.now() / 1000),
      ...payload,
    });
  } catch (err) {
    ctx.logger.warn({ err, topic }, 'job event not published');
  }
}

/** Opaque pagination tokens over a string key. */
export const encodeToken = (key: string) => Buffer.from(key, 'utf8').toString('base64url');
export function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  return Buffer.from(token, 'base64url').toString('utf8');
}

/** One page of `rows` (fetched with limit + 1) and the token of the next. */
export function page<T>(rows: readonly T[], limit: number, key: (t: T) => string) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextToken: rows.length > limit && last !== undefined ? encodeToken(key(last)) : undefined };
}
