import { afterAll, beforeAll, expect, test } from 'vitest';
import { CancelJobCommand, CreateJobCommand, UpdateEventConfigurationsCommand } from '@aws-sdk/client-iot';
import { UpdateJobExecutionCommand } from '@aws-sdk/client-iot-jobs-data-plane';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/** `$aws/events/job/...` and `$aws/events/jobExecution/...` (reference §8.3), only when enabled. */
let h: JobsHarness;
const events: Array<{ topic: string; body: any }> = [];
beforeAll(async () => {
  h = await jobsPlatform();
  await h.things('e1', 'e2');
  h.platform.broker.subscribeInternal('$aws/events/#', (m) =>
    events.push({ topic: m.topic, body: JSON.parse(m.payload.toString()) }),
  );
});
afterAll(() => h?.platform.stop());

test('off by default; JOB and JOB_EXECUTION events once UpdateEventConfigurations enables them', async () => {
  await h.iot.send(new CreateJobCommand({ jobId: 'quiet', targets: [h.arn('thing', 'e1')], document: '{}' }));
  await h.data.send(new UpdateJobExecutionCommand({ thingName: 'e1', jobId: 'quiet', status: 'SUCCEEDED' }));
  await h.iot.send(
    new UpdateEventConfigurationsCommand({
      eventConfigurations: { JOB: { Enabled: true }, JOB_EXECUTION: { Enabled: true } },
    }),
  );
  await h.iot.send(new CreateJobCommand({ jobId: 'loud', targets: [h.arn('thing', 'e1')], document: '{}' }));
  await h.data.send(
    new UpdateJobExecutionCommand({
      thingName: 'e1',
      jobId: 'loud',
      status: 'SUCCEEDED',
      statusDetails: { r: 'ok' },
    }),
  );
  const done = await waitFor(() => events.find((e) => e.topic === '$aws/events/job/loud/completed'));
  const succeeded = events.find((e) => e.topic === '$aws/events/jobExecution/loud/succeeded');
  expect(succeeded?.body).toMatchObject({
    eventType: 'JOB_EXECUTION',
    operation: 'succeeded',
    jobId: 'loud',
    thingArn: h.arn('thing', 'e1'),
    status: 'SUCCEEDED',
    statusDetails: { r: 'ok' },
  });
  expect(done.body).toMatchObject({
    eventType: 'JOB',
    operation: 'completed',
    jobId: 'loud',
    status: 'COMPLETED',
    targetSelection: 'SNAPSHOT',
    jobProcessDetails: { numberOfSucceededThings: 1 },
  });
  expect(typeof done.body.eventId).toBe('string');
  expect(events.some((e) => e.topic.includes('/quiet/'))).toBe(false);

  await h.iot.send(
    new CreateJobCommand({ jobId: 'stopped', targets: [h.arn('thing', 'e2')], document: '{}' }),
  );
  await h.iot.send(new CancelJobCommand({ jobId: 'stopped' }));
  await waitFor(() => events.find((e) => e.topic === '$aws/events/job/stopped/canceled'));
  await waitFor(() => events.find((e) => e.topic === '$aws/events/jobExecution/stopped/canceled'));
});
