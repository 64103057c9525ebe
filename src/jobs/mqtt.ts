/**
 * Jobs over MQTT (reference §8.3): the reserved-topic service for
 *   $aws/things/{thing}/jobs/get                 GetPendingJobExecutions
 *   $aws/things/{thing}/jobs/start-next          StartNextPendingJobExecution
 *   $aws/things/{thing}/jobs/{jobId|$next}/get   DescribeJobExecution
 *   $aws/things/{thing}/jobs/{jobId}/update      UpdateJobExecution
 * Replies go to `<request topic>/accepted` or `/rejected` ONLY to the requesting client (broker.deliverTo),
 * whether or not it subscribed, and never through routing: rules and other clients cannot see them (§8.1).
 * Every reply echoes the request's clientToken (the Device SDK v2 matches replies by it) and carries
 * `timestamp` in epoch seconds; rejections carry AWS's string codes (InvalidJson, InvalidRequest,
 * ResourceNotFound, InvalidStateTransition and VersionMismatch with executionState, InternalError).
 *
 * Authorization is the broker's: the request was an authorized iot:Publish on its topic, and the reply is
 * checked against the requester's iot:Receive on the reply topic like any delivery.
 */
import { isThingsteadError } from '../errors/index.js';
import { E } from '../errors/index.js';
import type { Broker, ReservedTopicService, ServiceRequest } from '../mqtt/index.js';
import type { JobsContext } from './context.js';
import type { DeviceJobs } from './device.js';
import { deviceExecutionShape, deviceSummaryShape, executionStateShape, seconds } from './shapes.js';

const TOPIC = /^\$aws\/things\/([^/]+)\/jobs\/(?:(get|start-next)|([^/]+)\/(get|update))$/;

type Request = Record<string, unknown>;

/** The MQTT rejection code for an error (reference §8.3). */
function rejectionCode(err: unknown): string {
  if (!isThingsteadError(err)) return 'InternalError';
  if (err.kind === 'JobsRequestJson') return 'InvalidJson';
  if (err.kind === 'JobExecutionVersion') return 'VersionMismatch';
  if (err.code === 'InvalidStateTransition') return 'InvalidStateTransition';
  if (err.code === 'ResourceNotFound') return 'ResourceNotFound';
  if (err.code === 'InvalidRequest') return 'InvalidRequest';
  if (err.code === 'Throttling') return 'RequestThrottled';
  return 'InternalError';
}

function parse(payload: Buffer): Request {
  if (payload.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw E.JobsRequestJson();
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw E.JobsRequestJson();
  return v as Request;
}

function member<T extends 'string' | 'number' | 'boolean' | 'object'>(
  r: Request,
  name: string,
  type: T,
):
  | (T extends 'string' ? string : T extends 'number' ? number : T extends 'boolean' ? boolean : object)
  | undefined {
  const v = r[name];
  if (v === undefined || v === null) return undefined;
  const ok =
    type === 'number'
      ? typeof v === 'number' && Number.isInteger(v)
      : type === 'object'
        ? typeof v === 'object' && !Array.isArray(v)
        : typeof v === type;
  if (!ok)
    throw E.JobsRequestInvalid({
      problem: `${name} must be ${type === 'number' ? 'an integer' : `a ${type}`}`,
    });
  return v as never;
}

export function jobsMqttService(
  ctx: JobsContext,
  device: DeviceJobs,
  broker: Pick<Broker, 'deliverTo'>,
): ReservedTopicService {
  const reply = (req: ServiceRequest, suffix: 'accepted' | 'rejected', body: Record<string, unknown>) => {
    broker.deliverTo(req.publisher.clientId, {
      topic: `${req.topic}/${suffix}`,
      payload: Buffer.from(JSON.stringify(body)),
      qos: req.qos === 0 ? 0 : 1,
      retain: false,
    });
  };

  async function answer(thingName: string, op: string, jobId: string | undefined, r: Request) {
    const now = ctx.now();
    const stamp = { timestamp: seconds(now) };
    if (op === 'get' && jobId === undefined) {
      const p = await device.getPending(thingName);
      return {
        inProgressJobs: p.inProgress.map(deviceSummaryShape),
        queuedJobs: p.queued.map(deviceSummaryShape),
        ...stamp,
      };
    }
    if (op === 'start-next') {
      const statusDetails = member(r, 'statusDetails', 'object') as Record<string, string> | undefined;
      const stepTimeoutInMinutes = member(r, 'stepTimeoutInMinutes', 'number');
      const started = await device.startNext(thingName, {
        ...(statusDetails !== undefined ? { statusDetails } : {}),
        ...(stepTimeoutInMinutes !== undefined ? { stepTimeoutInMinutes } : {}),
      });
      return {
        ...(started
          ? { execution: deviceExecutionShape(started.execution, started.document, { asObject: true, now }) }
          : {}),
        ...stamp,
      };
    }
    if (op === 'get') {
      const executionNumber = member(r, 'executionNumber', 'number');
      const includeJobDocument = member(r, 'includeJobDocument', 'boolean');
      const found = await device.describe(thingName, jobId!, {
        ...(executionNumber !== undefined ? { executionNumber } : {}),
        ...(includeJobDocument !== undefined ? { includeJobDocument } : {}),
      });
      return {
        execution: deviceExecutionShape(found.execution, found.document, { asObject: true, now }),
        ...stamp,
      };
    }
    const status = member(r, 'status', 'string');
    if (status === undefined) throw E.JobsRequestInvalid({ problem: 'status is required' });
    const statusDetails = member(r, 'statusDetails', 'object') as Record<string, string> | undefined;
    const expectedVersion = member(r, 'expectedVersion', 'number');
    const executionNumber = member(r, 'executionNumber', 'number');
    const stepTimeoutInMinutes = member(r, 'stepTimeoutInMinutes', 'number');
    const includeJobExecutionState = member(r, 'includeJobExecutionState', 'boolean') === true;
    const includeJobDocument = member(r, 'includeJobDocument', 'boolean') === true;
    const updated = await device.update(thingName, jobId!, {
      status,
      statusDetails,
      expectedVersion,
      stepTimeoutInMinutes,
      ...(executionNumber !== undefined ? { executionNumber } : {}),
      includeJobDocument,
    });
    return {
      ...(includeJobExecutionState ? { executionState: executionStateShape(updated.execution) } : {}),
      ...(updated.document !== null ? { jobDocument: JSON.parse(updated.document) } : {}),
      ...stamp,
    };
  }

  async function handle(req: ServiceRequest): Promise<void> {
    const m = TOPIC.exec(req.topic);
    if (!m) return;
    const thingName = m[1]!;
    const op = m[2] ?? m[4]!;
    const jobId = m[3];
    let clientToken: string | undefined;
    try {
      const r = parse(req.payload);
      clientToken = typeof r.clientToken === 'string' ? r.clientToken : undefined;
      const body = await answer(thingName, op, jobId, r);
      reply(req, 'accepted', { ...body, ...(clientToken !== undefined ? { clientToken } : {}) });
    } catch (err) {
      const code = rejectionCode(err);
      if (code === 'InternalError') ctx.logger.warn({ err, topic: req.topic }, 'jobs MQTT request failed');
      let executionState: Record<string, unknown> | undefined;
      if ((code === 'VersionMismatch' || code === 'InvalidStateTransition') && jobId && jobId !== '$next') {
        const e = await ctx.store.getExecution(jobId, thingName).catch(() => null);
        if (e) executionState = executionStateShape(e);
      }
      reply(req, 'rejected', {
        code,
        message: isThingsteadError(err) ? err.message : 'Internal error',
        ...(clientToken !== undefined ? { clientToken } : {}),
        timestamp: seconds(ctx.now()),
        ...(executionState ? { executionState } : {}),
      });
    }
  }

  return {
    name: 'jobs',
    filters: [
      '$aws/things/+/jobs/get',
      '$aws/things/+/jobs/start-next',
      '$aws/things/+/jobs/+/get',
      '$aws/things/+/jobs/+/update',
    ],
    handle,
  };
}
