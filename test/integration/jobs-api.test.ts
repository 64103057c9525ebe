import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AddThingToThingGroupCommand,
  CancelJobCommand,
  CancelJobExecutionCommand,
  CreateJobCommand,
  CreateJobTemplateCommand,
  DeleteJobCommand,
  DeleteJobExecutionCommand,
  DeleteJobTemplateCommand,
  DescribeJobCommand,
  DescribeJobExecutionCommand,
  DescribeJobTemplateCommand,
  GetJobDocumentCommand,
  InvalidRequestException,
  InvalidStateTransitionException,
  ListJobExecutionsForJobCommand,
  ListJobExecutionsForThingCommand,
  ListJobTemplatesCommand,
  RemoveThingFromThingGroupCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  UpdateJobCommand,
  VersionConflictException,
  paginateListJobs,
} from '@aws-sdk/client-iot';
import {
  DescribeJobExecutionCommand as DataDescribe,
  GetPendingJobExecutionsCommand,
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
  InvalidStateTransitionException as DataInvalidStateTransition,
} from '@aws-sdk/client-iot-jobs-data-plane';
import { waitFor } from '../helpers/platform.js';
import { jobsDevice, jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/** Reference §3.5 (control plane) and §5 (jobs data plane), through the real AWS SDK v3 clients. */
let h: JobsHarness;
let docServer: Server;
let docUrl: string;
beforeAll(async () => {
  h = await jobsPlatform();
  await h.things('t1', 't2', 't3', 't4');
  await h.group('fleet', ['t2', 't3']);
  docServer = createServer((req, res) => {
    if (req.url === '/doc.json') res.end('{"op":"from-source","v":"${aws:iot:parameter:v}"}');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => docServer.listen(0, '127.0.0.1', r));
  docUrl = `http://127.0.0.1:${(docServer.address() as { port: number }).port}`;
});
afterAll(async () => {
  await h?.platform.stop();
  docServer?.close();
});

describe('control plane', () => {
  test('CreateJob on a thing and a group reaches every member; DescribeJob has AWS shapes', async () => {
    const out = await h.iot.send(
      new CreateJobCommand({
        jobId: 'job-a',
        targets: [h.arn('thing', 't1'), h.arn('thinggroup', 'fleet')],
        document: JSON.stringify({ op: 'reboot' }),
        description: 'first',
        timeoutConfig: { inProgressTimeoutInMinutes: 100 },
      }),
    );
    expect(out).toMatchObject({ jobArn: h.arn('job', 'job-a'), jobId: 'job-a', description: 'first' });
    const { job } = await h.iot.send(new DescribeJobCommand({ jobId: 'job-a' }));
    expect(job).toMatchObject({
      jobId: 'job-a',
      status: 'IN_PROGRESS',
      targetSelection: 'SNAPSHOT',
      targets: [h.arn('thing', 't1'), h.arn('thinggroup', 'fleet')],
      timeoutConfig: { inProgressTimeoutInMinutes: 100 },
      forceCanceled: false,
    });
    // Timestamps deserialize as Dates (epoch seconds on the wire, reference §12.1).
    expect(job!.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(job!.createdAt!.getTime() - Date.now())).toBeLessThan(10_000);
    expect(job!.jobProcessDetails).toMatchObject({ numberOfQueuedThings: 3, numberOfSucceededThings: 0 });
    const list = await h.iot.send(new ListJobExecutionsForJobCommand({ jobId: 'job-a' }));
    expect(list.executionSummaries!.map((s) => s.thingArn)).toEqual(
      ['t1', 't2', 't3'].map((t) => h.arn('thing', t)),
    );
    expect(list.executionSummaries![0]!.jobExecutionSummary).toMatchObject({
      status: 'QUEUED',
      executionNumber: 1,
      retryAttempt: 0,
    });
    const exec = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-a', thingName: 't2' }));
    expect(exec.execution).toMatchObject({
      jobId: 'job-a',
      status: 'QUEUED',
      thingArn: h.arn('thing', 't2'),
      executionNumber: 1,
      versionNumber: 1,
      statusDetails: { detailsMap: {} },
    });
    expect(exec.execution!.queuedAt).toBeInstanceOf(Date);
  });

  test('errors: duplicate id, missing target, bad targets, bad document, unknown job', async () => {
    const base = { targets: [h.arn('thing', 't1')], document: '{}' };
    await expect(h.iot.send(new CreateJobCommand({ jobId: 'job-a', ...base }))).rejects.toBeInstanceOf(
      ResourceAlreadyExistsException,
    );
    await expect(
      h.iot.send(new CreateJobCommand({ jobId: 'job-x', ...base, targets: [h.arn('thing', 'ghost')] })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(
      h.iot.send(
        new CreateJobCommand({ jobId: 'job-x', ...base, targets: ['arn:aws:iot:us-east-1:1:rule/r'] }),
      ),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      h.iot.send(new CreateJobCommand({ jobId: 'job-x', ...base, document: '[1]' })),
    ).rejects.toThrow(/not a JSON object/);
    await expect(
      h.iot.send(new CreateJobCommand({ jobId: 'job-x', targets: base.targets })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(h.iot.send(new CreateJobCommand({ jobId: 'bad id!', ...base }))).rejects.toThrow(
      /failed to satisfy constraint/,
    );
    await expect(h.iot.send(new DescribeJobCommand({ jobId: 'nope' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await expect(h.iot.send(new DescribeJobCommand({ jobId: 'job-x' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  test('documentSource (http) and documentParameters; GetJobDocument before and after substitution', async () => {
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'job-src',
        targets: [h.arn('thing', 't4')],
        documentSource: `${docUrl}/doc.json`,
        documentParameters: { v: '1.2"3' },
      }),
    );
    const doc = await h.iot.send(new GetJobDocumentCommand({ jobId: 'job-src' }));
    expect(JSON.parse(doc.document!)).toEqual({ op: 'from-source', v: '1.2"3' });
    const raw = await h.iot.send(new GetJobDocumentCommand({ jobId: 'job-src', beforeSubstitution: true }));
    expect(raw.document).toContain('${aws:iot:parameter:v}');
    const d = await h.iot.send(new DescribeJobCommand({ jobId: 'job-src' }));
    expect(d.documentSource).toBe(`${docUrl}/doc.json`);
    expect(d.job!.documentParameters).toEqual({ v: '1.2"3' });
    await expect(
      h.iot.send(
        new CreateJobCommand({
          jobId: 'job-src2',
          targets: [h.arn('thing', 't4')],
          documentSource: `${docUrl}/missing`,
        }),
      ),
    ).rejects.toThrow(/HTTP 404/);
    await expect(
      h.iot.send(
        new CreateJobCommand({
          jobId: 'job-src3',
          targets: [h.arn('thing', 't4')],
          documentSource: `${docUrl}/doc.json`,
        }),
      ),
    ).rejects.toThrow(/documentParameters does not give/);
  });

  test('ListJobs paginates with the SDK paginator and filters by status and group', async () => {
    for (let i = 0; i < 5; i++)
      await h.iot.send(
        new CreateJobCommand({ jobId: `page-${i}`, targets: [h.arn('thing', 't4')], document: '{}' }),
      );
    const ids: string[] = [];
    for await (const p of paginateListJobs({ client: h.iot, pageSize: 2 }, {})) {
      expect(p.jobs!.length).toBeLessThanOrEqual(2);
      ids.push(...p.jobs!.map((j) => j.jobId!));
    }
    expect(ids.filter((i) => i.startsWith('page-'))).toEqual([
      'page-0',
      'page-1',
      'page-2',
      'page-3',
      'page-4',
    ]);
    expect(new Set(ids).size).toBe(ids.length);
    const byGroup: string[] = [];
    for await (const p of paginateListJobs({ client: h.iot }, { thingGroupName: 'fleet' }))
      byGroup.push(...p.jobs!.map((j) => j.jobId!));
    expect(byGroup).toEqual(['job-a']);
  });

  test('UpdateJob changes the description and configs; CancelJob without force keeps IN_PROGRESS executions', async () => {
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'job-c',
        targets: [h.arn('thing', 't1'), h.arn('thing', 't4')],
        document: '{}',
      }),
    );
    await h.iot.send(
      new UpdateJobCommand({
        jobId: 'job-c',
        description: 'now',
        timeoutConfig: { inProgressTimeoutInMinutes: 9 },
      }),
    );
    const d = await h.iot.send(new DescribeJobCommand({ jobId: 'job-c' }));
    expect(d.job).toMatchObject({ description: 'now', timeoutConfig: { inProgressTimeoutInMinutes: 9 } });
    // t4 starts its job-c execution over the data plane.
    await h.data.send(
      new UpdateJobExecutionCommand({ thingName: 't4', jobId: 'job-c', status: 'IN_PROGRESS' }),
    );
    await h.iot.send(new CancelJobCommand({ jobId: 'job-c', reasonCode: 'OPERATOR', comment: 'stop' }));
    const after = await h.iot.send(new DescribeJobCommand({ jobId: 'job-c' }));
    expect(after.job).toMatchObject({
      status: 'CANCELED',
      reasonCode: 'OPERATOR',
      comment: 'stop',
      forceCanceled: false,
    });
    const e1 = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-c', thingName: 't1' }));
    const e4 = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-c', thingName: 't4' }));
    expect([e1.execution!.status, e4.execution!.status]).toEqual(['CANCELED', 'IN_PROGRESS']);
    // force cancels the IN_PROGRESS one too (reference §3.12).
    await h.iot.send(new CancelJobCommand({ jobId: 'job-c', force: true }));
    const f4 = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-c', thingName: 't4' }));
    expect(f4.execution).toMatchObject({ status: 'CANCELED', forceCanceled: true });
    await expect(
      h.iot.send(new UpdateJobCommand({ jobId: 'job-c', description: 'x' })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    // The device can no longer update it.
    await expect(
      h.data.send(new UpdateJobExecutionCommand({ thingName: 't4', jobId: 'job-c', status: 'SUCCEEDED' })),
    ).rejects.toBeInstanceOf(DataInvalidStateTransition);
  });

  test('DeleteJob needs force unless terminal; CancelJobExecution and DeleteJobExecution', async () => {
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'job-d',
        targets: [h.arn('thing', 't1'), h.arn('thing', 't4')],
        document: '{}',
      }),
    );
    await expect(h.iot.send(new DeleteJobCommand({ jobId: 'job-d' }))).rejects.toBeInstanceOf(
      InvalidStateTransitionException,
    );
    await expect(
      h.iot.send(new CancelJobExecutionCommand({ jobId: 'job-d', thingName: 't1', expectedVersion: 7 })),
    ).rejects.toBeInstanceOf(VersionConflictException);
    await h.iot.send(
      new CancelJobExecutionCommand({ jobId: 'job-d', thingName: 't1', statusDetails: { why: 'test' } }),
    );
    const e = await h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-d', thingName: 't1' }));
    expect(e.execution).toMatchObject({ status: 'CANCELED', statusDetails: { detailsMap: { why: 'test' } } });
    await expect(
      h.iot.send(new CancelJobExecutionCommand({ jobId: 'job-d', thingName: 't1' })),
    ).rejects.toBeInstanceOf(InvalidStateTransitionException);
    await expect(
      h.iot.send(new DeleteJobExecutionCommand({ jobId: 'job-d', thingName: 't4', executionNumber: 1 })),
    ).rejects.toBeInstanceOf(InvalidStateTransitionException);
    await h.iot.send(new DeleteJobExecutionCommand({ jobId: 'job-d', thingName: 't1', executionNumber: 1 }));
    await expect(
      h.iot.send(new DescribeJobExecutionCommand({ jobId: 'job-d', thingName: 't1' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await h.iot.send(new DeleteJobCommand({ jobId: 'job-d', force: true }));
    await expect(h.iot.send(new DescribeJobCommand({ jobId: 'job-d' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    const forThing = await h.iot.send(new ListJobExecutionsForThingCommand({ thingName: 't4' }));
    expect(forThing.executionSummaries!.map((s) => s.jobId)).not.toContain('job-d');
    await expect(
      h.iot.send(new ListJobExecutionsForThingCommand({ thingName: 'ghost' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  test('job templates: create (inline or from a job), describe, list, make a job from one, delete', async () => {
    const t = await h.iot.send(
      new CreateJobTemplateCommand({
        jobTemplateId: 'tpl-1',
        description: 'firmware',
        document: '{"firmware":"${aws:iot:parameter:version}"}',
        timeoutConfig: { inProgressTimeoutInMinutes: 30 },
      }),
    );
    expect(t).toEqual(
      expect.objectContaining({ jobTemplateArn: h.arn('jobtemplate', 'tpl-1'), jobTemplateId: 'tpl-1' }),
    );
    await h.iot.send(
      new CreateJobTemplateCommand({
        jobTemplateId: 'tpl-2',
        description: 'copy',
        jobArn: h.arn('job', 'job-a'),
      }),
    );
    await expect(
      h.iot.send(
        new CreateJobTemplateCommand({ jobTemplateId: 'tpl-1', description: 'again', document: '{}' }),
      ),
    ).rejects.toBeInstanceOf(ResourceAlreadyExistsException);
    const d = await h.iot.send(new DescribeJobTemplateCommand({ jobTemplateId: 'tpl-1' }));
    expect(d).toMatchObject({ description: 'firmware', timeoutConfig: { inProgressTimeoutInMinutes: 30 } });
    expect(d.createdAt).toBeInstanceOf(Date);
    const d2 = await h.iot.send(new DescribeJobTemplateCommand({ jobTemplateId: 'tpl-2' }));
    expect(JSON.parse(d2.document!)).toEqual({ op: 'reboot' });
    const list = await h.iot.send(new ListJobTemplatesCommand({ maxResults: 1 }));
    expect(list.jobTemplates!.map((x) => x.jobTemplateId)).toEqual(['tpl-1']);
    const rest = await h.iot.send(new ListJobTemplatesCommand({ nextToken: list.nextToken }));
    expect(rest.jobTemplates!.map((x) => x.jobTemplateId)).toEqual(['tpl-2']);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'from-tpl',
        targets: [h.arn('thing', 't4')],
        jobTemplateArn: h.arn('jobtemplate', 'tpl-1'),
        documentParameters: { version: '2.0.1' },
      }),
    );
    const job = await h.iot.send(new DescribeJobCommand({ jobId: 'from-tpl' }));
    expect(job.job).toMatchObject({
      jobTemplateArn: h.arn('jobtemplate', 'tpl-1'),
      timeoutConfig: { inProgressTimeoutInMinutes: 30 },
    });
    expect(
      JSON.parse((await h.iot.send(new GetJobDocumentCommand({ jobId: 'from-tpl' }))).document!),
    ).toEqual({
      firmware: '2.0.1',
    });
    await h.iot.send(new DeleteJobTemplateCommand({ jobTemplateId: 'tpl-2' }));
    await expect(
      h.iot.send(new DescribeJobTemplateCommand({ jobTemplateId: 'tpl-2' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  test('a CONTINUOUS job reaches a thing that joins a target group later; one that leaves is REMOVED', async () => {
    await h.things('c1', 'c2');
    await h.group('cgroup', ['c1']);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'job-cont',
        targets: [h.arn('thinggroup', 'cgroup')],
        document: '{}',
        targetSelection: 'CONTINUOUS',
      }),
    );
    const things = async () =>
      (await h.iot.send(new ListJobExecutionsForJobCommand({ jobId: 'job-cont' }))).executionSummaries!.map(
        (s) => [s.thingArn!.split('/')[1], s.jobExecutionSummary!.status],
      );
    await waitFor(async () => (await things()).length === 1, 5000, 'c1 launched');
    await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'cgroup', thingName: 'c2' }));
    await waitFor(async () => (await things()).length === 2, 5000, 'c2 launched');
    await h.iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: 'cgroup', thingName: 'c1' }));
    await waitFor(
      async () =>
        JSON.stringify(await things()) ===
        JSON.stringify([
          ['c1', 'REMOVED'],
          ['c2', 'QUEUED'],
        ]),
      5000,
      'c1 removed',
    );
    const d = await h.iot.send(new DescribeJobCommand({ jobId: 'job-cont' }));
    expect(d.job).toMatchObject({ status: 'IN_PROGRESS', targetSelection: 'CONTINUOUS' });
    expect(d.job!.jobProcessDetails).toMatchObject({ numberOfRemovedThings: 1, numberOfQueuedThings: 1 });
  });
});

describe('jobs data plane (iot-jobs-data)', () => {
  test('pending list, start-next, describe $next, update to SUCCEEDED; the job completes', async () => {
    await h.things('d1');
    await h.iot.send(
      new CreateJobCommand({ jobId: 'dp-1', targets: [h.arn('thing', 'd1')], document: '{"do":"it"}' }),
    );
    await h.iot.send(
      new CreateJobCommand({ jobId: 'dp-2', targets: [h.arn('thing', 'd1')], document: '{"do":"next"}' }),
    );
    const pending = await h.data.send(new GetPendingJobExecutionsCommand({ thingName: 'd1' }));
    expect(pending.queuedJobs!.map((j) => j.jobId)).toEqual(['dp-1', 'dp-2']);
    expect(pending.inProgressJobs).toEqual([]);
    const q = pending.queuedJobs![0]!;
    expect(typeof q.queuedAt).toBe('number');
    expect(Math.abs(q.queuedAt! - Date.now() / 1000)).toBeLessThan(30); // epoch seconds
    const described = await h.data.send(new DataDescribe({ thingName: 'd1', jobId: '$next' }));
    expect(described.execution).toMatchObject({
      jobId: 'dp-1',
      status: 'QUEUED',
      jobDocument: '{"do":"it"}',
    });
    const started = await h.data.send(
      new StartNextPendingJobExecutionCommand({
        thingName: 'd1',
        statusDetails: { step: 'download' },
        stepTimeoutInMinutes: 60,
      }),
    );
    expect(started.execution).toMatchObject({
      jobId: 'dp-1',
      thingName: 'd1',
      status: 'IN_PROGRESS',
      statusDetails: { step: 'download' },
      versionNumber: 2,
      executionNumber: 1,
      jobDocument: '{"do":"it"}',
    });
    expect(started.execution!.approximateSecondsBeforeTimedOut).toBeGreaterThan(50);
    // start-next again returns the IN_PROGRESS one unchanged.
    const again = await h.data.send(new StartNextPendingJobExecutionCommand({ thingName: 'd1' }));
    expect(again.execution).toMatchObject({ jobId: 'dp-1', versionNumber: 2 });
    await expect(
      h.data.send(
        new UpdateJobExecutionCommand({
          thingName: 'd1',
          jobId: 'dp-1',
          status: 'SUCCEEDED',
          expectedVersion: 1,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConflictException' });
    const done = await h.data.send(
      new UpdateJobExecutionCommand({
        thingName: 'd1',
        jobId: 'dp-1',
        status: 'SUCCEEDED',
        expectedVersion: 2,
        statusDetails: { step: 'done' },
        includeJobExecutionState: true,
        includeJobDocument: true,
      }),
    );
    expect(done).toMatchObject({
      executionState: { status: 'SUCCEEDED', statusDetails: { step: 'done' }, versionNumber: 3 },
      jobDocument: '{"do":"it"}',
    });
    await waitFor(
      async () => (await h.iot.send(new DescribeJobCommand({ jobId: 'dp-1' }))).job!.status === 'COMPLETED',
    );
    const completed = await h.iot.send(new DescribeJobCommand({ jobId: 'dp-1' }));
    expect(completed.job!.completedAt).toBeInstanceOf(Date);
    expect(completed.job!.jobProcessDetails).toMatchObject({ numberOfSucceededThings: 1 });
    expect(completed.job!.jobProcessDetails!.processingTargets).toBeUndefined();
    await expect(
      h.data.send(new UpdateJobExecutionCommand({ thingName: 'd1', jobId: 'dp-1', status: 'IN_PROGRESS' })),
    ).rejects.toBeInstanceOf(DataInvalidStateTransition);
    const next = await h.data.send(
      new DataDescribe({ thingName: 'd1', jobId: '$next', includeJobDocument: false }),
    );
    expect(next.execution!.jobId).toBe('dp-2');
    expect(next.execution!.jobDocument).toBeUndefined();
  });
});

describe('jobs over MQTT (reference §8.3)', () => {
  test('notify-next, start-next, VersionMismatch with executionState, update: replies only to the requester', async () => {
    await h.things('m1');
    const dev = await jobsDevice(h.platform, 'm1', [
      '$aws/things/m1/jobs/notify',
      '$aws/things/m1/jobs/notify-next',
    ]);
    // A second client watching every jobs topic of m1 sees requests (they are routed) but never a reply.
    const spy = await jobsDevice(h.platform, 'spy', ['$aws/things/m1/jobs/#']);
    const seen: string[] = [];
    const unsubscribe = h.platform.broker.subscribeInternal('$aws/things/m1/jobs/#', (m) =>
      seen.push(m.topic),
    );
    await h.iot.send(
      new CreateJobCommand({ jobId: 'mq-1', targets: [h.arn('thing', 'm1')], document: '{"url":"x"}' }),
    );
    const nn = await dev.next('$aws/things/m1/jobs/notify-next');
    expect(nn.body).toMatchObject({
      execution: {
        jobId: 'mq-1',
        status: 'QUEUED',
        jobDocument: { url: 'x' },
        executionNumber: 1,
        versionNumber: 1,
      },
    });
    expect(Number.isInteger(nn.body.timestamp)).toBe(true);
    const notify = await dev.next('$aws/things/m1/jobs/notify');
    expect(notify.body.jobs.QUEUED.map((j: any) => j.jobId)).toEqual(['mq-1']);

    const get = await dev.request('$aws/things/m1/jobs/get');
    expect(get.outcome).toBe('accepted');
    expect(get.body.queuedJobs.map((j: any) => j.jobId)).toEqual(['mq-1']);
    expect(get.body.inProgressJobs).toEqual([]);

    const start = await dev.request('$aws/things/m1/jobs/start-next', { statusDetails: { p: '0' } });
    expect(start.body.execution).toMatchObject({
      jobId: 'mq-1',
      status: 'IN_PROGRESS',
      statusDetails: { p: '0' },
      versionNumber: 2,
    });
    expect(start.body.execution.jobDocument).toEqual({ url: 'x' });

    const stale = await dev.request('$aws/things/m1/jobs/mq-1/update', {
      status: 'IN_PROGRESS',
      expectedVersion: 1,
    });
    expect(stale.outcome).toBe('rejected');
    expect(stale.body).toMatchObject({
      code: 'VersionMismatch',
      executionState: { status: 'IN_PROGRESS', versionNumber: 2 },
    });

    const described = await dev.request('$aws/things/m1/jobs/$next/get', { includeJobDocument: false });
    expect(described.body.execution).toMatchObject({ jobId: 'mq-1', status: 'IN_PROGRESS' });
    expect(described.body.execution.jobDocument).toBeUndefined();

    const ok = await dev.request('$aws/things/m1/jobs/mq-1/update', {
      status: 'SUCCEEDED',
      expectedVersion: 2,
      includeJobExecutionState: true,
    });
    expect(ok.body).toMatchObject({ executionState: { status: 'SUCCEEDED', versionNumber: 3 } });
    const last = await dev.request('$aws/things/m1/jobs/mq-1/update', { status: 'IN_PROGRESS' });
    expect(last.body).toMatchObject({
      code: 'InvalidStateTransition',
      executionState: { status: 'SUCCEEDED' },
    });
    // Nothing pending any more: notify-next without an execution.
    await waitFor(() =>
      dev.got.some((m) => m.topic.endsWith('/notify-next') && m.body.execution === undefined),
    );

    const bad = await dev.request('$aws/things/m1/jobs/nope/get');
    expect(bad.body.code).toBe('ResourceNotFound');
    await dev.client.publishAsync('$aws/things/m1/jobs/get', 'not json', { qos: 1 });
    await waitFor(() =>
      dev.got.some((m) => m.topic === '$aws/things/m1/jobs/get/rejected' && m.body.code === 'InvalidJson'),
    );

    expect(spy.got.some((m) => m.topic.endsWith('/accepted') || m.topic.endsWith('/rejected'))).toBe(false);
    expect(spy.got.some((m) => m.topic === '$aws/things/m1/jobs/start-next')).toBe(true);
    expect(seen.some((t) => t.endsWith('/accepted') || t.endsWith('/rejected'))).toBe(false);
    unsubscribe();
    await dev.end();
    await spy.end();
  });
});
