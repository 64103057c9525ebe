/**
 * The jobs operations: the control plane under signing name `iot` (reference §3.5; routes from the
 * @aws-sdk/client-iot model) and the jobs data plane under `iot-jobs-data` (§5). The two share
 * `GET /things/{thingName}/jobs[/{jobId}]`; the dispatcher tells them apart by the credential scope's
 * service (§12.5). Data-plane callers are authenticated by their access key like every API call (an
 * admin key for the writes StartNext and Update; read-only keys may read).
 */
import { z } from 'zod';
import {
  awsBool,
  awsInt,
  awsString,
  iotOperation,
  maxResults,
  type AwsOperation,
  type IotOperationOptions,
} from '../api/index.js';
import { E } from '../errors/index.js';
import { tagList } from '../tags/index.js';
import type { DeviceJobs } from './device.js';
import type { JobsService } from './service.js';
import { deviceExecutionShape, deviceSummaryShape, executionStateShape } from './shapes.js';
import type { TargetResolver } from './targets.js';
import { EXECUTION_STATUSES, JOB_STATUSES } from './types.js';

const ID = { min: 1, max: 64, pattern: /^[a-zA-Z0-9_-]+$/, patternText: '[a-zA-Z0-9_-]+' };
const jobId = awsString(ID);
const templateId = awsString({ min: 1, max: 64, pattern: /^[a-zA-Z0-9_-]+$/, patternText: '[a-zA-Z0-9_-]+' });
const thingName = awsString({
  min: 1,
  max: 128,
  pattern: /^[a-zA-Z0-9:_-]+$/,
  patternText: '[a-zA-Z0-9:_-]+',
});
const enumOf = (values: readonly string[]) =>
  z.enum(values as [string, ...string[]], {
    error: `Member must satisfy enum value set: [${values.join(', ')}]`,
  });
const text = (max: number) => awsString({ max });
const reasonCode = awsString({
  max: 128,
  pattern: /^[\p{Lu}\p{Nd}_]+$/u,
  patternText: '[\\p{Upper}\\p{Digit}_]+',
});
const details = z.record(z.string(), z.string(), { error: 'Member must be a map of strings' });

const rolloutConfig = z
  .object({
    maximumPerMinute: awsInt(1, 1000).optional(),
    exponentialRate: z
      .object({
        baseRatePerMinute: awsInt(1, 1000),
        incrementFactor: z.number({ error: 'Member must be a number' }).min(1.1).max(5),
        rateIncreaseCriteria: z
          .object({
            numberOfNotifiedThings: awsInt(1).optional(),
            numberOfSucceededThings: awsInt(1).optional(),
          })
          .strict(),
      })
      .strict()
      .optional(),
  })
  .strict();
const abortConfig = z
  .object({
    criteriaList: z
      .array(
        z
          .object({
            failureType: enumOf(['FAILED', 'REJECTED', 'TIMED_OUT', 'ALL']),
            action: enumOf(['CANCEL']),
            thresholdPercentage: z.number({ error: 'Member must be a number' }).min(0).max(100),
            minNumberOfExecutedThings: awsInt(1),
          })
          .strict(),
      )
      .min(1, { error: 'Member must have length greater than or equal to 1' }),
  })
  .strict();
const timeoutConfig = z.object({ inProgressTimeoutInMinutes: awsInt(1, 10_080).optional() }).strict();
const retryConfig = z
  .object({
    criteriaList: z
      .array(
        z
          .object({ failureType: enumOf(['FAILED', 'TIMED_OUT', 'ALL']), numberOfRetries: awsInt(0, 10) })
          .strict(),
      )
      .min(1, { error: 'Member must have length greater than or equal to 1' })
      .max(2, { error: 'Member must have length less than or equal to 2' }),
  })
  .strict();
const maintenanceWindows = z.array(
  z.object({ startTime: awsString({ min: 1, max: 256 }), durationInMinutes: awsInt(1, 1430) }).strict(),
);
const schedulingConfig = z
  .object({
    startTime: awsString({ min: 1, max: 64 }).optional(),
    endTime: awsString({ min: 1, max: 64 }).optional(),
    endBehavior: enumOf(['STOP_ROLLOUT', 'CANCEL', 'FORCE_CANCEL']).optional(),
    maintenanceWindows: maintenanceWindows.optional(),
  })
  .strict();
const presignedUrlConfig = z
  .object({
    roleArn: awsString({ min: 20, max: 2048 }).optional(),
    expiresInSec: awsInt(60, 3600).optional(),
  })
  .strict();
/** Tags given at create time (the tags context's schema: key 1..128 of its pattern, value 0..256). */
const tags = tagList;
const documentParameters = z.record(
  awsString({ min: 1, max: 128, pattern: /^[a-zA-Z0-9_-]+$/, patternText: '[a-zA-Z0-9_-]+' }),
  awsString({ min: 1, max: 512 }),
  { error: 'Member must be a map of strings' },
);

const createJob = z
  .object({
    jobId,
    targets: z
      .array(awsString({ max: 2048 }))
      .min(1, { error: 'Member must have length greater than or equal to 1' }),
    documentSource: awsString({ min: 1, max: 1350 }).optional(),
    document: text(32_768).optional(),
    description: text(2028).optional(),
    presignedUrlConfig: presignedUrlConfig.optional(),
    targetSelection: enumOf(['CONTINUOUS', 'SNAPSHOT']).optional(),
    jobExecutionsRolloutConfig: rolloutConfig.optional(),
    abortConfig: abortConfig.optional(),
    timeoutConfig: timeoutConfig.optional(),
    tags: tags.optional(),
    namespaceId: awsString({ min: 1, max: 64, pattern: /^[a-zA-Z0-9_-]+$/ }).optional(),
    jobTemplateArn: awsString({ min: 1, max: 1600 }).optional(),
    jobExecutionsRetryConfig: retryConfig.optional(),
    documentParameters: documentParameters.optional(),
    schedulingConfig: schedulingConfig.optional(),
    destinationPackageVersions: z.array(awsString({ min: 1, max: 1600 })).optional(),
  })
  .strict();

const listQuery = { maxResults: { type: 'integer' }, nextToken: { type: 'string' } } as const;

/** Control-plane jobs operations (signing name `iot`). */
export function jobsControlOperations(service: JobsService): AwsOperation[] {
  const op = (
    name: string,
    method: AwsOperation['method'],
    path: string,
    handler: (input: Record<string, any>) => unknown,
    options: IotOperationOptions = {},
  ) => iotOperation(name, method, path, (input) => handler(input), options);
  return [
    op('CreateJob', 'PUT', '/jobs/{jobId}', (i) => service.createJob(i as never), { input: createJob }),
    op('DescribeJob', 'GET', '/jobs/{jobId}', (i) => service.describeJob(i as never), {
      query: { beforeSubstitution: { type: 'boolean' } },
      input: z.object({ jobId, beforeSubstitution: awsBool().optional() }),
    }),
    op('GetJobDocument', 'GET', '/jobs/{jobId}/job-document', (i) => service.getJobDocument(i as never), {
      query: { beforeSubstitution: { type: 'boolean' } },
      input: z.object({ jobId, beforeSubstitution: awsBool().optional() }),
    }),
    op('ListJobs', 'GET', '/jobs', (i) => service.listJobs(i), {
      query: {
        status: { type: 'string' },
        targetSelection: { type: 'string' },
        thingGroupName: { type: 'string' },
        thingGroupId: { type: 'string' },
        namespaceId: { type: 'string' },
        ...listQuery,
      },
      input: z.object({
        status: enumOf(JOB_STATUSES).optional(),
        targetSelection: enumOf(['CONTINUOUS', 'SNAPSHOT']).optional(),
        maxResults: maxResults(),
        nextToken: z.string().optional(),
        thingGroupName: z.string().optional(),
        thingGroupId: z.string().optional(),
        namespaceId: z.string().optional(),
      }),
    }),
    op('UpdateJob', 'PATCH', '/jobs/{jobId}', (i) => service.updateJob(i as never), {
      query: { namespaceId: { type: 'string' } },
      input: z
        .object({
          jobId,
          description: text(2028).optional(),
          presignedUrlConfig: presignedUrlConfig.optional(),
          jobExecutionsRolloutConfig: rolloutConfig.optional(),
          abortConfig: abortConfig.optional(),
          timeoutConfig: timeoutConfig.optional(),
          namespaceId: z.string().optional(),
          jobExecutionsRetryConfig: retryConfig.optional(),
        })
        .strict(),
    }),
    op('CancelJob', 'PUT', '/jobs/{jobId}/cancel', (i) => service.cancelJob(i as never), {
      query: { force: { type: 'boolean' } },
      input: z.object({
        jobId,
        reasonCode: reasonCode.optional(),
        comment: text(2028).optional(),
        force: awsBool().optional(),
      }),
    }),
    op(
      'AssociateTargetsWithJob',
      'POST',
      '/jobs/{jobId}/targets',
      (i) => service.associateTargetsWithJob(i as never),
      {
        query: { namespaceId: { type: 'string' } },
        input: z
          .object({
            jobId,
            targets: z
              .array(awsString({ max: 2048 }))
              .min(1, { error: 'Member must have length greater than or equal to 1' }),
            comment: text(2028).optional(),
            namespaceId: z.string().optional(),
          })
          .strict(),
      },
    ),
    op('DeleteJob', 'DELETE', '/jobs/{jobId}', (i) => service.deleteJob(i as never), {
      query: { force: { type: 'boolean' }, namespaceId: { type: 'string' } },
      input: z.object({ jobId, force: awsBool().optional(), namespaceId: z.string().optional() }),
    }),
    op(
      'ListJobExecutionsForJob',
      'GET',
      '/jobs/{jobId}/things',
      (i) => service.listJobExecutionsForJob(i as never),
      {
        query: { status: { type: 'string' }, ...listQuery },
        input: z.object({
          jobId,
          status: enumOf(EXECUTION_STATUSES).optional(),
          maxResults: maxResults(),
          nextToken: z.string().optional(),
        }),
      },
    ),
    op(
      'ListJobExecutionsForThing',
      'GET',
      '/things/{thingName}/jobs',
      (i) => service.listJobExecutionsForThing(i as never),
      {
        query: {
          status: { type: 'string' },
          namespaceId: { type: 'string' },
          jobId: { type: 'string' },
          ...listQuery,
        },
        input: z.object({
          thingName,
          status: enumOf(EXECUTION_STATUSES).optional(),
          namespaceId: z.string().optional(),
          jobId: jobId.optional(),
          maxResults: maxResults(),
          nextToken: z.string().optional(),
        }),
      },
    ),
    op(
      'DescribeJobExecution',
      'GET',
      '/things/{thingName}/jobs/{jobId}',
      (i) => service.describeJobExecution(i as never),
      {
        query: { executionNumber: { type: 'integer' } },
        input: z.object({ jobId, thingName, executionNumber: awsInt(0).optional() }),
      },
    ),
    op(
      'CancelJobExecution',
      'PUT',
      '/things/{thingName}/jobs/{jobId}/cancel',
      (i) => service.cancelJobExecution(i as never),
      {
        query: { force: { type: 'boolean' } },
        input: z.object({
          jobId,
          thingName,
          force: awsBool().optional(),
          expectedVersion: awsInt().optional(),
          statusDetails: details.optional(),
        }),
      },
    ),
    op(
      'DeleteJobExecution',
      'DELETE',
      '/things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber}',
      (i) => service.deleteJobExecution({ ...i, executionNumber: Number(i.executionNumber) } as never),
      {
        query: { force: { type: 'boolean' }, namespaceId: { type: 'string' } },
        input: z.object({
          jobId,
          thingName,
          executionNumber: awsString({ pattern: /^\d+$/, patternText: '[0-9]+' }),
          force: awsBool().optional(),
          namespaceId: z.string().optional(),
        }),
      },
    ),
    op(
      'CreateJobTemplate',
      'PUT',
      '/job-templates/{jobTemplateId}',
      (i) => service.createJobTemplate(i as never),
      {
        input: z
          .object({
            jobTemplateId: templateId,
            jobArn: awsString({ max: 1600 }).optional(),
            documentSource: awsString({ min: 1, max: 1350 }).optional(),
            document: text(32_768).optional(),
            description: text(2028),
            presignedUrlConfig: presignedUrlConfig.optional(),
            jobExecutionsRolloutConfig: rolloutConfig.optional(),
            abortConfig: abortConfig.optional(),
            timeoutConfig: timeoutConfig.optional(),
            tags: tags.optional(),
            jobExecutionsRetryConfig: retryConfig.optional(),
            maintenanceWindows: maintenanceWindows.optional(),
            destinationPackageVersions: z.array(awsString({ min: 1, max: 1600 })).optional(),
          })
          .strict(),
      },
    ),
    op(
      'DescribeJobTemplate',
      'GET',
      '/job-templates/{jobTemplateId}',
      (i) => service.describeJobTemplate(i as never),
      {
        input: z.object({ jobTemplateId: templateId }),
      },
    ),
    op('ListJobTemplates', 'GET', '/job-templates', (i) => service.listJobTemplates(i), {
      query: listQuery,
      input: z.object({ maxResults: maxResults(), nextToken: z.string().optional() }),
    }),
    op(
      'DeleteJobTemplate',
      'DELETE',
      '/job-templates/{jobTemplateId}',
      (i) => service.deleteJobTemplate(i as never),
      {
        input: z.object({ jobTemplateId: templateId }),
      },
    ),
  ];
}

/** Jobs data-plane operations (signing name `iot-jobs-data`, reference §5). */
export function jobsDataOperations(
  device: DeviceJobs,
  targets: TargetResolver,
  now: () => number,
): AwsOperation[] {
  const mustThing = async (name: string) => {
    if (!(await targets.thingExists(name))) throw E.JobTargetNotFound({ target: `thing/${name}` });
  };
  const data = (
    name: string,
    method: AwsOperation['method'],
    path: string,
    schema: z.ZodType,
    handler: (input: Record<string, any>) => Promise<Record<string, unknown>>,
    query?: AwsOperation['query'],
  ): AwsOperation => ({
    name,
    service: 'iot-jobs-data',
    method,
    path,
    readOnly: method === 'GET',
    input: schema,
    ...(query ? { query } : {}),
    handler: async (req) => handler(req.input),
  });
  return [
    data('GetPendingJobExecutions', 'GET', '/things/{thingName}/jobs', z.object({ thingName }), async (i) => {
      await mustThing(i.thingName);
      const p = await device.getPending(i.thingName);
      return {
        inProgressJobs: p.inProgress.map(deviceSummaryShape),
        queuedJobs: p.queued.map(deviceSummaryShape),
      };
    }),
    data(
      'StartNextPendingJobExecution',
      'PUT',
      '/things/{thingName}/jobs/$next',
      z.object({
        thingName,
        statusDetails: details.optional(),
        stepTimeoutInMinutes: awsInt().optional(),
      }),
      async (i) => {
        await mustThing(i.thingName);
        const r = await device.startNext(i.thingName, {
          ...(i.statusDetails ? { statusDetails: i.statusDetails } : {}),
          ...(i.stepTimeoutInMinutes !== undefined ? { stepTimeoutInMinutes: i.stepTimeoutInMinutes } : {}),
        });
        return r
          ? { execution: deviceExecutionShape(r.execution, r.document, { asObject: false, now: now() }) }
          : {};
      },
    ),
    data(
      'DescribeJobExecution',
      'GET',
      '/things/{thingName}/jobs/{jobId}',
      z.object({
        thingName,
        jobId: z.union([jobId, z.literal('$next')]),
        includeJobDocument: awsBool().optional(),
        executionNumber: awsInt(0).optional(),
      }),
      async (i) => {
        const r = await device.describe(i.thingName, i.jobId, {
          ...(i.executionNumber !== undefined ? { executionNumber: i.executionNumber } : {}),
          ...(i.includeJobDocument !== undefined ? { includeJobDocument: i.includeJobDocument } : {}),
        });
        return { execution: deviceExecutionShape(r.execution, r.document, { asObject: false, now: now() }) };
      },
      { includeJobDocument: { type: 'boolean' }, executionNumber: { type: 'integer' } },
    ),
    data(
      'UpdateJobExecution',
      'POST',
      '/things/{thingName}/jobs/{jobId}',
      z.object({
        thingName,
        jobId,
        status: z.string({ error: 'Member must not be null' }),
        statusDetails: details.optional(),
        stepTimeoutInMinutes: awsInt().optional(),
        expectedVersion: awsInt().optional(),
        includeJobExecutionState: awsBool().optional(),
        includeJobDocument: awsBool().optional(),
        executionNumber: awsInt(0).optional(),
      }),
      async (i) => {
        const r = await device.update(i.thingName, i.jobId, {
          status: i.status,
          statusDetails: i.statusDetails,
          expectedVersion: i.expectedVersion,
          stepTimeoutInMinutes: i.stepTimeoutInMinutes,
          ...(i.executionNumber !== undefined ? { executionNumber: i.executionNumber } : {}),
          includeJobDocument: i.includeJobDocument === true,
        });
        return {
          ...(i.includeJobExecutionState ? { executionState: executionStateShape(r.execution) } : {}),
          ...(r.document !== null ? { jobDocument: r.document } : {}),
        };
      },
    ),
  ];
}
