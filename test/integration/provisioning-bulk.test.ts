import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CreateThingGroupCommand,
  DescribeThingCommand,
  DescribeThingRegistrationTaskCommand,
  ListThingPrincipalsCommand,
  ListThingRegistrationTaskReportsCommand,
  ListThingRegistrationTasksCommand,
  RegisterThingCommand,
  StartThingRegistrationTaskCommand,
  StopThingRegistrationTaskCommand,
} from '@aws-sdk/client-iot';
import { waitFor } from '../helpers/platform.js';
import { makeCsr, provisioningPlatform, type ProvisioningHarness } from './provisioning-helpers.js';

/**
 * RegisterThing and bulk registration (issue 12; reference §3.6): StartThingRegistrationTask reads a local
 * file under provisioning.bulkInputDir (inputFileBucket = a folder there, inputFileKey = the file) or an
 * http(s) URL (inputFileKey), one JSON object of parameters per line; DescribeThingRegistrationTask gives the
 * status and counts; ListThingRegistrationTaskReports links to the per-line RESULTS and ERRORS. The proof of
 * scale: 10,000 devices (things with attributes and a group) in one task without an error.
 */
let h: ProvisioningHarness;
let files: Server;
let filesUrl: string;
const served = new Map<string, string>();

const THING_TEMPLATE = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' }, Model: { Type: 'String', Default: 'm1' } },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        ThingName: { 'Fn::Join': ['-', ['bulk', { Ref: 'SerialNumber' }]] },
        AttributePayload: { serial: { Ref: 'SerialNumber' }, model: { Ref: 'Model' } },
        ThingGroups: ['factory-line'],
      },
    },
  },
});

beforeAll(async () => {
  files = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (body === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  h = await provisioningPlatform({ provisioning: { bulkConcurrency: 32 } });
  await h.iot.send(new CreateThingGroupCommand({ thingGroupName: 'factory-line' }));
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
  await new Promise((r) => files?.close(r));
});

async function report(taskId: string, reportType: 'RESULTS' | 'ERRORS'): Promise<any[]> {
  const r = await h.iot.send(new ListThingRegistrationTaskReportsCommand({ taskId, reportType }));
  expect(r.reportType).toBe(reportType);
  const text = await (await fetch(r.resourceLinks![0]!)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

test('10,000 devices from one local file, without an error', async () => {
  const dir = join(h.platform.endpoints.dataDir, 'bulk', 'factory');
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 10_000; i++)
    lines.push(JSON.stringify({ SerialNumber: `S${String(i).padStart(5, '0')}` }));
  writeFileSync(join(dir, 'devices.jsonl'), lines.join('\n') + '\n');
  const t0 = Date.now();
  const { taskId } = await h.iot.send(
    new StartThingRegistrationTaskCommand({
      templateBody: THING_TEMPLATE,
      inputFileBucket: 'factory',
      inputFileKey: 'devices.jsonl',
      roleArn: 'arn:aws:iam::123456789012:role/bulk',
    }),
  );
  const done = await waitFor(
    async () => {
      const d = await h.iot.send(new DescribeThingRegistrationTaskCommand({ taskId }));
      return d.status === 'Completed' ? d : null;
    },
    90_000,
    'the task to complete',
  );
  const seconds = (Date.now() - t0) / 1000;
  console.log(`10,000 registrations in ${seconds.toFixed(1)} s (${Math.round(10_000 / seconds)}/s)`);
  expect(done).toMatchObject({ successCount: 10_000, failureCount: 0, percentageProgress: 100 });
  expect(done.creationDate).toBeInstanceOf(Date);
  const results = await report(taskId!, 'RESULTS');
  expect(results).toHaveLength(10_000);
  expect(results[0]).toEqual({
    referenceId: '1',
    response: { resourceArns: { thing: h.arn('thing', 'bulk-S00000') } },
  });
  expect(await report(taskId!, 'ERRORS')).toEqual([]);
  const thing = await h.iot.send(new DescribeThingCommand({ thingName: 'bulk-S09999' }));
  expect(thing.attributes).toEqual({ serial: 'S09999', model: 'm1' });
  expect(h.platform.registry.index.size).toBeGreaterThanOrEqual(10_000);
  const listed = await h.iot.send(new ListThingRegistrationTasksCommand({ status: 'Completed' }));
  expect(listed.taskIds).toContain(taskId);
}, 150_000);

test('an http URL with certificates (CSR) and bad lines: per-line results and errors', async () => {
  const template = JSON.stringify({
    Parameters: { SerialNumber: { Type: 'String' }, CSR: { Type: 'String' } },
    Resources: {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateSigningRequest: { Ref: 'CSR' }, Status: 'ACTIVE' },
      },
    },
  });
  const a = await makeCsr('url-a');
  const b = await makeCsr('url-b');
  served.set(
    '/lines.jsonl',
    [
      JSON.stringify({ SerialNumber: 'url-a', CSR: a.csr }),
      'not json',
      JSON.stringify({ SerialNumber: 'url-b', CSR: b.csr }),
      JSON.stringify({ SerialNumber: 'bad name!', CSR: b.csr }),
      JSON.stringify({
        SerialNumber: 'url-c',
        CSR: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
      }),
    ].join('\n'),
  );
  const { taskId } = await h.iot.send(
    new StartThingRegistrationTaskCommand({
      templateBody: template,
      inputFileBucket: 'url',
      inputFileKey: `${filesUrl}/lines.jsonl`,
      roleArn: 'arn:aws:iam::123456789012:role/bulk',
    }),
  );
  const done = await waitFor(
    async () => {
      const d = await h.iot.send(new DescribeThingRegistrationTaskCommand({ taskId }));
      return d.status === 'Completed' ? d : null;
    },
    30_000,
    'the task to complete',
  );
  expect(done).toMatchObject({ successCount: 2, failureCount: 3 });
  const results = await report(taskId!, 'RESULTS');
  expect(results.map((r) => r.referenceId)).toEqual(['1', '3']);
  expect(results[0].response.certificatePem).toContain('BEGIN CERTIFICATE');
  const errors = await report(taskId!, 'ERRORS');
  expect(errors.map((e) => e.referenceId)).toEqual(['2', '4', '5']);
  expect(errors[0].errorMessage).toBe('the line is not JSON');
  expect(errors[1].errorCode).toBe('InvalidRequestException');
  expect(errors[2].errorMessage).toContain('certificateSigningRequest cannot be parsed');
  const principals = await h.iot.send(new ListThingPrincipalsCommand({ thingName: 'url-b' }));
  expect(principals.principals).toHaveLength(1);
}, 60_000);

test('RegisterThing (the API) and the refusals of a task input', async () => {
  const r = await h.iot.send(
    new RegisterThingCommand({ templateBody: THING_TEMPLATE, parameters: { SerialNumber: 'API1' } }),
  );
  expect(r.resourceArns).toEqual({ thing: h.arn('thing', 'bulk-API1') });
  await expect(
    h.iot.send(new RegisterThingCommand({ templateBody: THING_TEMPLATE, parameters: {} })),
  ).rejects.toMatchObject({
    name: 'InvalidRequestException',
    message: expect.stringContaining('SerialNumber'),
  });
  await expect(
    h.iot.send(new RegisterThingCommand({ templateBody: '{"Resources": 3}' })),
  ).rejects.toMatchObject({ name: 'InvalidRequestException' });
  const start = (inputFileBucket: string, inputFileKey: string) =>
    h.iot.send(
      new StartThingRegistrationTaskCommand({
        templateBody: THING_TEMPLATE,
        inputFileBucket,
        inputFileKey,
        roleArn: 'arn:aws:iam::123456789012:role/bulk',
      }),
    );
  await expect(start('factory', '../../../etc/passwd')).rejects.toMatchObject({
    name: 'InvalidRequestException',
    message: expect.stringContaining('must be inside'),
  });
  await expect(start('factory', 'missing.jsonl')).rejects.toMatchObject({
    message: expect.stringContaining('does not exist'),
  });
}, 30_000);

test('StopThingRegistrationTask: Cancelling then Cancelled, the lines done stay; stopping again is refused', async () => {
  const { taskId } = await h.iot.send(
    new StartThingRegistrationTaskCommand({
      templateBody: THING_TEMPLATE.replace('"bulk"', '"stop"'),
      inputFileBucket: 'factory',
      inputFileKey: 'devices.jsonl',
      roleArn: 'arn:aws:iam::123456789012:role/bulk',
    }),
  );
  await h.iot.send(new StopThingRegistrationTaskCommand({ taskId }));
  const stopped = await waitFor(
    async () => {
      const d = await h.iot.send(new DescribeThingRegistrationTaskCommand({ taskId }));
      return d.status === 'Cancelled' ? d : null;
    },
    60_000,
    'the task to be cancelled',
  );
  expect(stopped.successCount!).toBeLessThan(10_000);
  expect(stopped.message).toContain('Stopped');
  await expect(h.iot.send(new StopThingRegistrationTaskCommand({ taskId }))).rejects.toMatchObject({
    name: 'InvalidRequestException',
    message: expect.stringContaining('only an InProgress task can be stopped'),
  });
}, 90_000);
