import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CreateJobCommand, DescribeJobCommand, DescribeJobExecutionCommand } from '@aws-sdk/client-iot';
import { iot, iotjobs, mqtt } from 'aws-iot-device-sdk-v2';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * The AWS IoT Device SDK v2 for JavaScript runs a job to SUCCEEDED against Thingstead (issue 11): a device
 * made by `thingstead onboard` (its least-privilege starter policy), mutual TLS on the MQTT TLS port, the
 * SDK's request-response jobs client (IotJobsClientv2: replies matched by clientToken on `.../+` wildcard
 * subscriptions) and its notify-next stream.
 */
const run = promisify(execFile);
let h: JobsHarness;
let files: { certificate: string; privateKey: string; ca: string };
beforeAll(async () => {
  h = await jobsPlatform({ mqtt: { allowAnonymous: false } });
  const out = mkdtempSync(join(tmpdir(), 'jobs-sdk-'));
  const r = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'onboard',
      'sdk-dev',
      '--out',
      out,
      '--json',
      '--data-dir',
      h.platform.endpoints.dataDir,
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: out }, timeout: 60_000 },
  );
  files = JSON.parse(r.stdout).files;
}, 90_000);
afterAll(async () => {
  await h?.platform.stop();
});

test('Device SDK v2 iotjobs over mutual TLS: notify-next, start-next, update to SUCCEEDED', async () => {
  const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(
    readFileSync(files.certificate, 'utf8'),
    readFileSync(files.privateKey, 'utf8'),
  )
    .with_certificate_authority(readFileSync(files.ca, 'utf8'))
    .with_endpoint('localhost')
    .with_port(h.platform.endpoints.mqttsPort!)
    .with_client_id('sdk-dev')
    .with_clean_session(true)
    .build();
  const connection = new mqtt.MqttClient().new_connection(config);
  await connection.connect();
  const jobs = iotjobs.IotJobsClientv2.newFromMqtt311(connection, {
    maxRequestResponseSubscriptions: 4,
    maxStreamingSubscriptions: 2,
    operationTimeoutInSeconds: 10,
  });
  try {
    const next: iotjobs.model.NextJobExecutionChangedEvent[] = [];
    const stream = jobs.createNextJobExecutionChangedStream({ thingName: 'sdk-dev' });
    let subscribed = false;
    stream.on('subscriptionStatus', (e) => {
      if (Number(e.type) === 0 /* SubscriptionStatusEventType.SubscriptionEstablished */) subscribed = true;
    });
    stream.on('incomingPublish', (e) => next.push(e.message));
    stream.open();
    await waitFor(() => subscribed, 10_000, 'notify-next subscription');

    await h.iot.send(
      new CreateJobCommand({
        jobId: 'sdk-job',
        targets: [h.arn('thing', 'sdk-dev')],
        document: JSON.stringify({ operation: 'install', version: '1.2.3' }),
      }),
    );
    await waitFor(() => next.length > 0, 10_000, 'notify-next event');
    expect(next[0]!.execution).toMatchObject({ jobId: 'sdk-job', status: 'QUEUED' });

    const pending = await jobs.getPendingJobExecutions({ thingName: 'sdk-dev' });
    expect(pending.queuedJobs?.map((j) => j.jobId)).toEqual(['sdk-job']);

    const started = await jobs.startNextPendingJobExecution({
      thingName: 'sdk-dev',
      stepTimeoutInMinutes: 5,
    });
    expect(started.execution).toMatchObject({
      jobId: 'sdk-job',
      thingName: 'sdk-dev',
      status: 'IN_PROGRESS',
      jobDocument: { operation: 'install', version: '1.2.3' },
    });

    const progress = await jobs.updateJobExecution({
      thingName: 'sdk-dev',
      jobId: 'sdk-job',
      status: iotjobs.model.JobStatus.IN_PROGRESS,
      statusDetails: { progress: '50' },
      expectedVersion: started.execution!.versionNumber,
      includeJobExecutionState: true,
    });
    expect(progress.executionState).toMatchObject({
      status: 'IN_PROGRESS',
      statusDetails: { progress: '50' },
    });

    // A stale expectedVersion is rejected with VersionMismatch (the SDK raises it).
    await expect(
      jobs.updateJobExecution({
        thingName: 'sdk-dev',
        jobId: 'sdk-job',
        status: iotjobs.model.JobStatus.SUCCEEDED,
        expectedVersion: started.execution!.versionNumber,
      }),
    ).rejects.toThrow();

    const done = await jobs.updateJobExecution({
      thingName: 'sdk-dev',
      jobId: 'sdk-job',
      status: iotjobs.model.JobStatus.SUCCEEDED,
      expectedVersion: progress.executionState!.versionNumber,
      includeJobExecutionState: true,
    });
    expect(done.executionState?.status).toBe('SUCCEEDED');

    const exec = await h.iot.send(
      new DescribeJobExecutionCommand({ jobId: 'sdk-job', thingName: 'sdk-dev' }),
    );
    expect(exec.execution?.status).toBe('SUCCEEDED');
    await waitFor(
      async () =>
        (await h.iot.send(new DescribeJobCommand({ jobId: 'sdk-job' }))).job?.status === 'COMPLETED',
      5000,
      'job COMPLETED',
    );
    await waitFor(() => next.some((e) => e.execution === undefined), 5000, 'empty notify-next');
    stream.close();
  } finally {
    jobs.close();
    await connection.disconnect();
  }
}, 60_000);
