import { AWS, PYTHON, awsEnv, awsTools, run } from '../helpers/tools.js';
import { readFileSync } from 'node:fs';
import {
  CreateBillingGroupCommand,
  CreateDynamicThingGroupCommand,
  CreatePolicyCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  CreateTopicRuleCommand,
  DeleteBillingGroupCommand,
  DeletePolicyCommand,
  DeleteThingGroupCommand,
  DeleteTopicRuleCommand,
  IoTClient,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

/**
 * Resource tags through the real clients (@aws-sdk/client-iot, boto3, the AWS CLI) against the whole
 * platform: TagResource, UntagResource, ListTagsForResource with AWS's constraints (key 1..128, value
 * 0..256, at most 50 per resource, `aws:` reserved), and the tags given at create time (thing groups,
 * dynamic groups, thing types, billing groups, policies, topic rules through x-amz-tagging) readable back
 * and gone with their resource.
 */

const { haveAws, haveBoto3 } = await awsTools('its tagging tests');

let p: TestPlatform;
let iot: IoTClient;
let creds: { accessKeyId: string; secretAccessKey: string };
const ACCOUNT = '000000000000';
const arn = (type: string, name: string) => `arn:aws:iot:us-east-1:${ACCOUNT}:${type}/${name}`;
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
});

beforeAll(async () => {
  p = await startTestPlatform();
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  creds = { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! };
  iot = new IoTClient({
    endpoint: p.endpoints.http,
    region: 'us-east-1',
    credentials: creds,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  iot?.destroy();
  await p?.stop();
});

const list = async (resourceArn: string) =>
  (await iot.send(new ListTagsForResourceCommand({ resourceArn }))).tags ?? [];

/** The AWS error a promise rejects with: name, HTTP status and message. */
async function failure(promise: Promise<unknown>) {
  const err = (await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  )) as { name: string; message: string; $metadata: { httpStatusCode?: number } };
  return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
}

describe('@aws-sdk/client-iot', () => {
  test('tags given at create time are readable for thing groups, dynamic groups, types, billing groups, policies and rules', async () => {
    const tags = [
      { Key: 'env', Value: 'prod' },
      { Key: 'team', Value: 'a b/c' },
    ];
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'tg1', tags }));
    await iot.send(
      new CreateDynamicThingGroupCommand({ thingGroupName: 'dg1', queryString: 'thingName:x*', tags }),
    );
    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'tt1', tags }));
    await iot.send(new CreateBillingGroupCommand({ billingGroupName: 'bg1', tags }));
    await iot.send(new CreatePolicyCommand({ policyName: 'p1', policyDocument: POLICY, tags }));
    // CreateTopicRule carries its tags in the x-amz-tagging header, URL query format (reference §2).
    await iot.send(
      new CreateTopicRuleCommand({
        ruleName: 'r1',
        topicRulePayload: { sql: "SELECT * FROM 'a/b'", actions: [] },
        tags: 'env=prod&team=a%20b%2Fc',
      }),
    );
    for (const [type, name] of [
      ['thinggroup', 'tg1'],
      ['thinggroup', 'dg1'],
      ['thingtype', 'tt1'],
      ['billinggroup', 'bg1'],
      ['policy', 'p1'],
      ['rule', 'r1'],
    ])
      expect(await list(arn(type!, name!)), `${type}/${name}`).toEqual(tags);
  });

  test('TagResource adds and overwrites, UntagResource removes, keys come back sorted', async () => {
    const a = arn('thinggroup', 'tg1');
    await iot.send(
      new TagResourceCommand({
        resourceArn: a,
        tags: [{ Key: 'env', Value: 'staging' }, { Key: 'cost-center', Value: '' }, { Key: 'owner' }],
      }),
    );
    expect(await list(a)).toEqual([
      { Key: 'cost-center', Value: '' },
      { Key: 'env', Value: 'staging' },
      { Key: 'owner' },
      { Key: 'team', Value: 'a b/c' },
    ]);
    await iot.send(new UntagResourceCommand({ resourceArn: a, tagKeys: ['owner', 'team', 'never-there'] }));
    expect((await list(a)).map((t) => t.Key)).toEqual(['cost-center', 'env']);
  });

  test("AWS's constraints: aws: reserved, key and value lengths, 50 per resource, duplicates (InvalidRequestException)", async () => {
    const a = arn('policy', 'p1');
    const tag = (tags: Array<{ Key: string; Value?: string }>) =>
      failure(iot.send(new TagResourceCommand({ resourceArn: a, tags })));
    for (const bad of [
      [{ Key: 'aws:owner', Value: 'x' }],
      [{ Key: 'AWS:Owner', Value: 'x' }],
      [{ Key: 'k'.repeat(129), Value: 'x' }],
      [{ Key: '', Value: 'x' }],
      [{ Key: 'bad#char', Value: 'x' }],
      [{ Key: 'v', Value: 'x'.repeat(257) }],
      [
        { Key: 'same', Value: '1' },
        { Key: 'same', Value: '2' },
      ],
    ])
      expect(await tag(bad), JSON.stringify(bad).slice(0, 80)).toMatchObject({
        name: 'InvalidRequestException',
        status: 400,
      });
    expect((await tag([{ Key: 'aws:owner', Value: 'x' }])).message).toContain("'aws:' are reserved");
    // Edge values are accepted: a 128-character key, a 256-character value.
    await iot.send(
      new TagResourceCommand({ resourceArn: a, tags: [{ Key: 'k'.repeat(128), Value: 'v'.repeat(256) }] }),
    );
    // p1 holds 3 tags now: 47 more fit, 48 do not, and a refused request adds nothing.
    const many = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) => ({ Key: `${prefix}${i}`, Value: String(i) }));
    expect(await tag(many(48, 'x'))).toMatchObject({ name: 'InvalidRequestException', status: 400 });
    expect(await list(a)).toHaveLength(3);
    await iot.send(new TagResourceCommand({ resourceArn: a, tags: many(47, 'y') }));
    expect(await list(a)).toHaveLength(50);
    expect(await tag([{ Key: 'one-more', Value: '' }])).toMatchObject({
      name: 'InvalidRequestException',
      message: 'A resource can have at most 50 tags.',
    });
    expect(
      await failure(iot.send(new UntagResourceCommand({ resourceArn: a, tagKeys: ['aws:x'] }))),
    ).toMatchObject({ name: 'InvalidRequestException' });
    // At create time the same checks apply, before anything is created.
    expect(
      await failure(
        iot.send(
          new CreateThingGroupCommand({ thingGroupName: 'tg-bad', tags: [{ Key: 'aws:x', Value: '' }] }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidRequestException' });
    expect(await failure(list(arn('thinggroup', 'tg-bad')))).toMatchObject({
      name: 'ResourceNotFoundException',
    });
    expect(
      await failure(
        iot.send(
          new CreateTopicRuleCommand({
            ruleName: 'r_bad',
            topicRulePayload: { sql: "SELECT * FROM 'a'", actions: [] },
            tags: 'aws:x=1',
          }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidRequestException' });
  });

  test('an ARN that names nothing is ResourceNotFoundException; a non-ARN or an untaggable type is InvalidRequestException', async () => {
    for (const resourceArn of [
      arn('thinggroup', 'nope'),
      arn('policy', 'nope'),
      arn('rule', 'nope'),
      arn('billinggroup', 'nope'),
      arn('ruledestination', 'http/00000000-0000-0000-0000-000000000000'),
      'arn:aws:iot:eu-west-1:000000000000:thinggroup/tg1', // another region's
      'arn:aws:iot:us-east-1:999999999999:thinggroup/tg1', // another account's
    ]) {
      expect(await failure(list(resourceArn)), resourceArn).toMatchObject({
        name: 'ResourceNotFoundException',
        status: 404,
      });
      expect(
        await failure(iot.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'k', Value: 'v' }] }))),
      ).toMatchObject({ name: 'ResourceNotFoundException' });
    }
    expect(await failure(list('not-an-arn'))).toMatchObject({ name: 'InvalidRequestException' });
    expect(await failure(list(arn('thing', 'x')))).toMatchObject({
      name: 'InvalidRequestException',
      message: expect.stringContaining('type thing cannot be tagged'),
    });
  });

  test('deleting a resource deletes its tags: a new resource of the same name starts untagged', async () => {
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'tg2', tags: [{ Key: 'k', Value: 'v' }] }));
    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'tg2' }));
    expect(await failure(list(arn('thinggroup', 'tg2')))).toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'tg2' }));
    expect(await list(arn('thinggroup', 'tg2'))).toEqual([]);

    await iot.send(
      new CreateBillingGroupCommand({ billingGroupName: 'bg2', tags: [{ Key: 'k', Value: 'v' }] }),
    );
    await iot.send(new DeleteBillingGroupCommand({ billingGroupName: 'bg2' }));
    await iot.send(new CreateBillingGroupCommand({ billingGroupName: 'bg2' }));
    expect(await list(arn('billinggroup', 'bg2'))).toEqual([]);

    await iot.send(
      new CreatePolicyCommand({ policyName: 'p2', policyDocument: POLICY, tags: [{ Key: 'k', Value: 'v' }] }),
    );
    await iot.send(new DeletePolicyCommand({ policyName: 'p2' }));
    await iot.send(new CreatePolicyCommand({ policyName: 'p2', policyDocument: POLICY }));
    expect(await list(arn('policy', 'p2'))).toEqual([]);

    const payload = { sql: "SELECT * FROM 'x'", actions: [] };
    await iot.send(new CreateTopicRuleCommand({ ruleName: 'r2', topicRulePayload: payload, tags: 'k=v' }));
    await iot.send(new DeleteTopicRuleCommand({ ruleName: 'r2' }));
    await iot.send(new CreateTopicRuleCommand({ ruleName: 'r2', topicRulePayload: payload }));
    expect(await list(arn('rule', 'r2'))).toEqual([]);
  });
});

const env = () => awsEnv(p);

describe.skipIf(!haveBoto3)('boto3', () => {
  test('create_thing_type with tags, tag_resource, list_tags_for_resource, untag_resource; errors by class', async () => {
    const script = `
import boto3, json, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1], region_name='us-east-1')
a = iot.create_thing_type(thingTypeName='boto_tt', tags=[{'Key': 'env', 'Value': 'dev'}])['thingTypeArn']
iot.tag_resource(resourceArn=a, tags=[{'Key': 'owner', 'Value': 'ops'}])
first = iot.list_tags_for_resource(resourceArn=a)['tags']
iot.untag_resource(resourceArn=a, tagKeys=['env'])
second = iot.list_tags_for_resource(resourceArn=a)['tags']
errors = []
for call in (lambda: iot.tag_resource(resourceArn=a, tags=[{'Key': 'aws:x', 'Value': ''}]),
             lambda: iot.list_tags_for_resource(resourceArn=a.replace('boto_tt', 'missing'))):
    try:
        call()
        errors.append(None)
    except iot.exceptions.InvalidRequestException as e:
        errors.append('InvalidRequestException')
    except iot.exceptions.ResourceNotFoundException as e:
        errors.append('ResourceNotFoundException')
print(json.dumps({'first': first, 'second': second, 'errors': errors}))
`;
    const r = await run(PYTHON, ['-c', script, p.endpoints.http], { env: env() });
    expect(JSON.parse(r.stdout)).toEqual({
      first: [
        { Key: 'env', Value: 'dev' },
        { Key: 'owner', Value: 'ops' },
      ],
      second: [{ Key: 'owner', Value: 'ops' }],
      errors: ['InvalidRequestException', 'ResourceNotFoundException'],
    });
  });
});

describe.skipIf(!haveAws)('AWS CLI', () => {
  const aws = async (args: string[]) => {
    try {
      const r = await run(AWS, ['iot', ...args, '--endpoint-url', p.endpoints.http, '--output', 'json'], {
        env: env(),
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  test('create-topic-rule --tags, tag-resource, list-tags-for-resource, untag-resource', async () => {
    const created = await aws([
      'create-topic-rule',
      '--rule-name',
      'cli_rule',
      '--topic-rule-payload',
      JSON.stringify({ sql: "SELECT * FROM 'cli/t'", actions: [] }),
      '--tags',
      'env=cli&team=ops',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const a = arn('rule', 'cli_rule');
    expect((await aws(['tag-resource', '--resource-arn', a, '--tags', 'Key=extra,Value=1'])).code).toBe(0);
    expect((await aws(['untag-resource', '--resource-arn', a, '--tag-keys', 'team'])).code).toBe(0);
    const listed = await aws(['list-tags-for-resource', '--resource-arn', a]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).tags).toEqual([
      { Key: 'env', Value: 'cli' },
      { Key: 'extra', Value: '1' },
    ]);
    const refused = await aws(['tag-resource', '--resource-arn', a, '--tags', 'Key=aws:k,Value=1']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('InvalidRequestException');
  });
});
