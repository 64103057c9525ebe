/**
 * The provisioning flows' operations under signing name `iot` (reference §3.6; routes and shapes from the
 * @aws-sdk/client-iot model): RegisterThing, CreateProvisioningClaim, StartThingRegistrationTask,
 * DescribeThingRegistrationTask, ListThingRegistrationTasks, StopThingRegistrationTask,
 * ListThingRegistrationTaskReports; and Thingstead's own:
 *
 *   GET /provisioning/traces[?templateName=&result=accepted|rejected&thingName=&certificateId=&maxResults=&nextToken=]
 *   GET /provisioning/traces/{attemptId}
 *   GET /thing-registration-tasks/{taskId}/report-files/{ERRORS|RESULTS}/{secret}   (unsigned: the link
 *       ListThingRegistrationTaskReports hands out carries the secret, as AWS's presigned S3 URLs do)
 *
 * (The template operations are part A's, templates-api.ts; the module serves both.)
 */
import { z } from 'zod';
import { awsString, iotOperation, maxResults, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import type { RegistrationTasks } from './bulk.js';
import type { DeviceCertificates } from './certificates.js';
import type { Pipeline, TemplateSource } from './pipeline.js';
import type { TraceLog } from './trace.js';

const templateName = awsString({
  min: 1,
  max: 36,
  pattern: /^[0-9A-Za-z_-]+$/,
  patternText: '^[0-9A-Za-z_-]+$',
});
const templateBody = awsString({ max: 10240 });
const taskId = awsString({ max: 40 });
const parameters = z.record(awsString({ max: 2048 }), awsString({ max: 4096 }));
const reportType = z.enum(['ERRORS', 'RESULTS'], {
  error: 'Member must satisfy enum value set: [ERRORS, RESULTS]',
});
const taskStatus = z.enum(['InProgress', 'Completed', 'Failed', 'Cancelled', 'Cancelling'], {
  error: 'Member must satisfy enum value set: [InProgress, Completed, Failed, Cancelled, Cancelling]',
});

export function provisioningOperations(deps: {
  pipeline: Pipeline;
  templates: TemplateSource;
  claims: DeviceCertificates;
  tasks: RegistrationTasks;
  traces: TraceLog;
}): AwsOperation[] {
  const { pipeline, templates, claims, tasks, traces } = deps;
  return [
    iotOperation(
      'RegisterThing',
      'POST',
      '/things',
      async (i) => {
        const outcome = await pipeline.provision({
          flow: 'api',
          template: { body: i.templateBody as string },
          templateType: 'FLEET_PROVISIONING',
          parameters: (i.parameters as Record<string, string> | undefined) ?? {},
        });
        if (!outcome.ok) throw outcome.refusal.error;
        return {
          ...(outcome.certificatePem !== undefined ? { certificatePem: outcome.certificatePem } : {}),
          resourceArns: outcome.resourceArns,
        };
      },
      { input: z.object({ templateBody, parameters: parameters.optional() }) },
    ),
    iotOperation(
      'CreateProvisioningClaim',
      'POST',
      '/provisioning-templates/{templateName}/provisioning-claim',
      async (i) => {
        const name = i.templateName as string;
        const stored = await templates.getTemplate(name);
        if (!stored) throw E.ProvisioningTemplateMissing({ templateName: name });
        if (stored.type !== 'FLEET_PROVISIONING')
          throw E.ProvisioningTemplateType({
            templateName: name,
            type: stored.type,
            expected: 'FLEET_PROVISIONING',
          });
        return claims.createClaim(name);
      },
      { input: z.object({ templateName }) },
    ),
    iotOperation(
      'StartThingRegistrationTask',
      'POST',
      '/thing-registration-tasks',
      (i) => tasks.start(i as never),
      {
        input: z.object({
          templateBody,
          inputFileBucket: awsString({ min: 3, max: 256 }),
          inputFileKey: awsString({ min: 1, max: 1024 }),
          roleArn: awsString({ min: 20, max: 2048 }),
        }),
      },
    ),
    iotOperation(
      'DescribeThingRegistrationTask',
      'GET',
      '/thing-registration-tasks/{taskId}',
      (i) => tasks.describe(i.taskId as string),
      { input: z.object({ taskId }) },
    ),
    iotOperation('ListThingRegistrationTasks', 'GET', '/thing-registration-tasks', (i) => tasks.list(i), {
      query: { nextToken: { type: 'string' }, maxResults: { type: 'integer' }, status: { type: 'string' } },
      input: z.object({
        nextToken: z.string().optional(),
        maxResults: maxResults(),
        status: taskStatus.optional(),
      }),
    }),
    iotOperation(
      'StopThingRegistrationTask',
      'PUT',
      '/thing-registration-tasks/{taskId}/cancel',
      async (i) => {
        await tasks.stop(i.taskId as string);
        return {};
      },
      { input: z.object({ taskId }) },
    ),
    iotOperation(
      'ListThingRegistrationTaskReports',
      'GET',
      '/thing-registration-tasks/{taskId}/reports',
      async (i) => ({
        resourceLinks: await tasks.reportLinks(i.taskId as string, i.reportType as 'ERRORS' | 'RESULTS'),
        reportType: i.reportType,
      }),
      {
        query: {
          reportType: { type: 'string' },
          nextToken: { type: 'string' },
          maxResults: { type: 'integer' },
        },
        input: z.object({
          taskId,
          reportType,
          nextToken: z.string().optional(),
          maxResults: maxResults(),
        }),
      },
    ),
    {
      name: 'GetThingRegistrationTaskReportFile',
      service: 'iot',
      method: 'GET',
      path: '/thing-registration-tasks/{taskId}/report-files/{reportType}/{secret}',
      readOnly: true,
      unsigned: true,
      async handler(req) {
        const text = await tasks.reportFile(req.params.taskId!, req.params.reportType!, req.params.secret!);
        return { raw: Buffer.from(text), contentType: 'application/x-ndjson' };
      },
    },
    iotOperation(
      'ListProvisioningTraces',
      'GET',
      '/provisioning/traces',
      (i) =>
        traces.list({
          templateName: i.templateName,
          result: i.result,
          thingName: i.thingName,
          certificateId: i.certificateId,
          nextToken: i.nextToken,
          limit: i.maxResults,
        }),
      {
        query: {
          templateName: { type: 'string' },
          result: { type: 'string' },
          thingName: { type: 'string' },
          certificateId: { type: 'string' },
          nextToken: { type: 'string' },
          maxResults: { type: 'integer' },
        },
        input: z.object({
          templateName: z.string().optional(),
          result: z
            .enum(['accepted', 'rejected'], {
              error: 'Member must satisfy enum value set: [accepted, rejected]',
            })
            .optional(),
          thingName: z.string().optional(),
          certificateId: z.string().optional(),
          nextToken: z.string().optional(),
          maxResults: maxResults(),
        }),
      },
    ),
    iotOperation(
      'DescribeProvisioningTrace',
      'GET',
      '/provisioning/traces/{attemptId}',
      async (i) => {
        const trace = await traces.get(i.attemptId as string);
        if (!trace) throw E.ProvisioningTraceNotFound({ attemptId: i.attemptId as string });
        return { trace };
      },
      { input: z.object({ attemptId: awsString({ min: 1, max: 64 }) }) },
    ),
  ];
}
