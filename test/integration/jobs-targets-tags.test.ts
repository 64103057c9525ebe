import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AddThingToThingGroupCommand,
  AssociateTargetsWithJobCommand,
  CancelJobCommand,
  CreateJobCommand,
  CreateJobTemplateCommand,
  DeleteJobCommand,
  DeleteJobTemplateCommand,
  DescribeJobCommand,
  ListJobExecutionsForJobCommand,
  ListJobsCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-iot';
import { waitFor } from '../helpers/platform.js';
import { AWS, awsTools, run } from '../helpers/tools.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * AssociateTargetsWithJob (`POST /jobs/{jobId}/targets`, reference §3.5) and job tags through the tags
 * context (CreateJob/CreateJobTemplate `tags`, ListTagsForResource, TagResource and UntagResource on job and
 * job-template ARNs), with @aws-sdk/client-iot and the AWS CLI (Debian awscli, skipped visibly without it).
 */
const { haveAws } = await awsTools('the jobs AWS CLI checks');

let h: JobsHarness;
beforeAll(async () => {
  h = await jobsPlatform();
});
afterAll(() => h?.platform.stop());

const things = async (jobId: string) =>
  (await h.iot.send(new ListJobExecutionsForJobCommand({ jobId, maxResults: 250 })))
    .executionSummaries!.map((e) => e.thingArn!.slice(e.thingArn!.lastIndexOf('/') + 1))
    .sort();
const tagsOf = async (resourceArn: string) =>
  (await h.iot.send(new ListTagsForResourceCommand({ resourceArn }))).tags;

async function aws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: h.platform.endpoints.dataDir,
    AWS_SHARED_CREDENTIALS_FILE: h.platform.endpoints.credentialsFile!,
    AWS_CONFIG_FILE: join(h.platform.endpoints.dataDir, 'no-config'),
    AWS_DEFAULT_REGION: h.platform.config.region,
    AWS_PAGER: '',
  };
  try {
    const r = await run(AWS, [...args, '--endpoint-url', h.platform.endpoints.http, '--output', 'json'], {
      env,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('AssociateTargetsWithJob', () => {
  test('adds a group to an IN_PROGRESS continuous job: its members get executions, later joiners too', async () => {
    await h.things('as1', 'as2', 'as3', 'as4');
    await h.group('as-first', ['as1']);
    await h.group('as-second', ['as2', 'as3']);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'assoc-job',
        targets: [h.arn('thinggroup', 'as-first')],
        document: '{"op":"assoc"}',
        targetSelection: 'CONTINUOUS',
      }),
    );
    await waitFor(async () => (await things('assoc-job')).length === 1, 5000, 'first group launched');
    const r = await h.iot.send(
      new AssociateTargetsWithJobCommand({
        jobId: 'assoc-job',
        targets: [h.arn('thinggroup', 'as-second'), h.arn('thinggroup', 'as-first')],
        comment: 'second wave',
      }),
    );
    expect(r).toMatchObject({ jobId: 'assoc-job', jobArn: h.arn('job', 'assoc-job') });
    await waitFor(async () => (await things('assoc-job')).length === 3, 5000, 'second group launched');
    expect(await things('assoc-job')).toEqual(['as1', 'as2', 'as3']);
    const d = (await h.iot.send(new DescribeJobCommand({ jobId: 'assoc-job' }))).job!;
    // The ARN the job had already is not listed twice.
    expect(d.targets).toEqual([h.arn('thinggroup', 'as-first'), h.arn('thinggroup', 'as-second')]);
    expect(d.comment).toBe('second wave');
    // A thing that joins the associated group later is reached as well (continuous job).
    await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'as-second', thingName: 'as4' }));
    await waitFor(async () => (await things('assoc-job')).includes('as4'), 5000, 'later joiner launched');
    // ListJobs by thing group finds the job through either group.
    const byGroup = await h.iot.send(new ListJobsCommand({ thingGroupName: 'as-second' }));
    expect(byGroup.jobs!.map((j) => j.jobId)).toEqual(['assoc-job']);
  });

  test("AWS's criteria: CONTINUOUS, IN_PROGRESS, at most 100 targets, targets that exist", async () => {
    await h.things('crit1');
    await h.iot.send(
      new CreateJobCommand({ jobId: 'snap-job', targets: [h.arn('thing', 'crit1')], document: '{}' }),
    );
    await expect(
      h.iot.send(
        new AssociateTargetsWithJobCommand({ jobId: 'snap-job', targets: [h.arn('thing', 'crit1')] }),
      ),
    ).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: expect.stringMatching(/IN_PROGRESS CONTINUOUS job; job snap-job is \w+ and SNAPSHOT/),
    });
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'cont-job',
        targets: [h.arn('thing', 'crit1')],
        document: '{}',
        targetSelection: 'CONTINUOUS',
      }),
    );
    const many = Array.from({ length: 100 }, (_, i) => h.arn('thinggroup', `g${i}`));
    const limit = await h.iot
      .send(new AssociateTargetsWithJobCommand({ jobId: 'cont-job', targets: many }))
      .catch((e: unknown) => e);
    expect(limit).toMatchObject({ name: 'LimitExceededException', $metadata: { httpStatusCode: 410 } });
    expect((limit as Error).message).toMatch(/would have 101 targets; .* at most 100/);
    await expect(
      h.iot.send(
        new AssociateTargetsWithJobCommand({ jobId: 'cont-job', targets: [h.arn('thinggroup', 'no-such')] }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(
      h.iot.send(new AssociateTargetsWithJobCommand({ jobId: 'no-job', targets: [h.arn('thing', 'crit1')] })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    // Nothing of the refused calls stuck.
    expect((await h.iot.send(new DescribeJobCommand({ jobId: 'cont-job' }))).job!.targets).toEqual([
      h.arn('thing', 'crit1'),
    ]);
    await h.iot.send(new CancelJobCommand({ jobId: 'cont-job' }));
    await expect(
      h.iot.send(
        new AssociateTargetsWithJobCommand({ jobId: 'cont-job', targets: [h.arn('thing', 'crit1')] }),
      ),
    ).rejects.toMatchObject({ message: expect.stringMatching(/job cont-job is CANCELED and CONTINUOUS/) });
  });

  test.skipIf(!haveAws)('aws iot associate-targets-with-job', async () => {
    await h.things('cli1', 'cli2');
    await h.group('cli-group', ['cli2']);
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'cli-assoc',
        targets: [h.arn('thing', 'cli1')],
        document: '{}',
        targetSelection: 'CONTINUOUS',
      }),
    );
    const r = await aws([
      'iot',
      'associate-targets-with-job',
      '--job-id',
      'cli-assoc',
      '--targets',
      h.arn('thinggroup', 'cli-group'),
      '--comment',
      'from the CLI',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ jobId: 'cli-assoc', jobArn: h.arn('job', 'cli-assoc') });
    await waitFor(async () => (await things('cli-assoc')).length === 2, 5000, 'group member launched');
  });
});

describe('job tags (src/tags)', () => {
  test('CreateJob tags are listed by ListTagsForResource, changed by Tag/UntagResource, gone with the job', async () => {
    await h.things('tag1');
    const jobArn = (
      await h.iot.send(
        new CreateJobCommand({
          jobId: 'tagged-job',
          targets: [h.arn('thing', 'tag1')],
          document: '{}',
          tags: [
            { Key: 'team', Value: 'firmware' },
            { Key: 'wave', Value: '1' },
          ],
        }),
      )
    ).jobArn!;
    expect(jobArn).toBe(h.arn('job', 'tagged-job'));
    expect(await tagsOf(jobArn)).toEqual([
      { Key: 'team', Value: 'firmware' },
      { Key: 'wave', Value: '1' },
    ]);
    await h.iot.send(new TagResourceCommand({ resourceArn: jobArn, tags: [{ Key: 'wave', Value: '2' }] }));
    await h.iot.send(new UntagResourceCommand({ resourceArn: jobArn, tagKeys: ['team'] }));
    expect(await tagsOf(jobArn)).toEqual([{ Key: 'wave', Value: '2' }]);
    await h.iot.send(new DeleteJobCommand({ jobId: 'tagged-job', force: true }));
    await expect(tagsOf(jobArn)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    // A job of the same id made again starts without the old tags.
    await h.iot.send(
      new CreateJobCommand({ jobId: 'tagged-job', targets: [h.arn('thing', 'tag1')], document: '{}' }),
    );
    expect(await tagsOf(jobArn)).toEqual([]);
  });

  test('reserved aws: keys are refused before the job is made; job template tags work the same way', async () => {
    await h.things('tag2');
    await expect(
      h.iot.send(
        new CreateJobCommand({
          jobId: 'reserved-job',
          targets: [h.arn('thing', 'tag2')],
          document: '{}',
          tags: [{ Key: 'aws:owner', Value: 'x' }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidRequestException' });
    await expect(h.iot.send(new DescribeJobCommand({ jobId: 'reserved-job' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    const t = await h.iot.send(
      new CreateJobTemplateCommand({
        jobTemplateId: 'tagged-template',
        description: 'd',
        document: '{}',
        tags: [{ Key: 'kind', Value: 'ota' }],
      }),
    );
    expect(await tagsOf(t.jobTemplateArn!)).toEqual([{ Key: 'kind', Value: 'ota' }]);
    await h.iot.send(new DeleteJobTemplateCommand({ jobTemplateId: 'tagged-template' }));
    await expect(tagsOf(t.jobTemplateArn!)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  test.skipIf(!haveAws)('aws iot list-tags-for-resource on a job ARN', async () => {
    await h.things('tag3');
    await h.iot.send(
      new CreateJobCommand({
        jobId: 'cli-tags',
        targets: [h.arn('thing', 'tag3')],
        document: '{}',
        tags: [{ Key: 'env', Value: 'lab' }],
      }),
    );
    const r = await aws(['iot', 'list-tags-for-resource', '--resource-arn', h.arn('job', 'cli-tags')]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tags).toEqual([{ Key: 'env', Value: 'lab' }]);
  });
});
