import { AWS, PYTHON, awsTools, run } from '../helpers/tools.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { credentialsProfile } from '../../src/identity/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The HTTP data plane (reference §4) through boto3 `iot-data` (Debian python3-boto3) and `aws iot-data`
 * (Debian awscli): they sign as `iotdata`, send the payload without a content-type and no
 * x-amz-content-sha256, and read errors from x-amzn-ErrorType. Skipped visibly when absent (required in CI).
 */

const { haveAws, haveBoto3 } = await awsTools('its data-plane tests');

let platform: TestPlatform;
let credFile: string;
let sub: MqttClient;
const got: mqtt.IPublishPacket[] = [];

beforeAll(async () => {
  platform = await startTestPlatform();
  const key = await platform.credentials.create('cli', 'admin');
  credFile = join(platform.endpoints.dataDir, 'cli-credentials');
  writeFileSync(credFile, credentialsProfile('default', key, platform.config.region), { mode: 0o600 });
  sub = await mqtt.connectAsync(platform.endpoints.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
  sub.on('message', (_t, _p, packet) => got.push(packet));
  await sub.subscribeAsync('cli/#', { qos: 1 });
});
afterAll(async () => {
  await sub?.endAsync();
  await platform?.stop();
});

const env = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: platform.endpoints.dataDir,
  AWS_SHARED_CREDENTIALS_FILE: credFile,
  AWS_CONFIG_FILE: join(platform.endpoints.dataDir, 'no-config'),
  AWS_DEFAULT_REGION: platform.config.region,
  AWS_PAGER: '',
});

async function python(script: string): Promise<any> {
  const r = await run(PYTHON, ['-c', script, platform.endpoints.http], { env: env() });
  return JSON.parse(r.stdout);
}

async function aws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(
      AWS,
      ['iot-data', ...args, '--endpoint-url', platform.endpoints.http, '--output', 'json'],
      {
        env: env(),
      },
    );
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const BOTO = `
import boto3, json, sys
from botocore.exceptions import ClientError
c = boto3.client('iot-data', endpoint_url=sys.argv[1])
def err(f):
    try:
        f()
        return None
    except ClientError as e:
        return {'code': e.response['Error']['Code'], 'message': e.response['Error']['Message'],
                'status': e.response['ResponseMetadata']['HTTPStatusCode'],
                'requestId': e.response['ResponseMetadata'].get('RequestId')}
`;

describe.skipIf(!haveBoto3)('boto3 iot-data', () => {
  test('publish with properties, retained read-back, paged listing, errors', async () => {
    const out = await python(`${BOTO}
c.publish(topic='cli/boto/state', qos=1, retain=True, payload=b'{"on":true}', contentType='application/json',
          userProperties=[{'src': 'boto3'}], payloadFormatIndicator='UTF8_DATA',
          correlationData='Y29ycg==', responseTopic='cli/boto/reply', messageExpiry=120)
for i in range(5):
    c.publish(topic='cli/boto/list/%d' % i, retain=True, payload=b'x' * (i + 1))
r = c.get_retained_message(topic='cli/boto/state')
topics = []
for page in c.get_paginator('list_retained_messages').paginate(PaginationConfig={'PageSize': 2}):
    topics += [s['topic'] for s in page['retainedTopics']]
print(json.dumps({
  'get': {'topic': r['topic'], 'payload': r['payload'].decode(), 'qos': r['qos'],
          'lastModifiedTime': r['lastModifiedTime']},
  'topics': topics,
  'events': err(lambda: c.publish(topic='$aws/events/presence/connected/x', payload=b'{}')),
  'qos': err(lambda: c.publish(topic='cli/q', qos=2)),
  'missing': err(lambda: c.get_retained_message(topic='cli/none')),
  'token': err(lambda: c.list_retained_messages(nextToken='bogus')),
}))
`);
    expect(out.get).toEqual({
      topic: 'cli/boto/state',
      payload: '{"on":true}',
      qos: 1,
      lastModifiedTime: expect.any(Number),
    }); // (Debian's botocore 1.26 model predates GetRetainedMessage's userProperties; the JS test reads them)
    expect(Math.abs(out.get.lastModifiedTime - Date.now())).toBeLessThan(60_000);
    expect(out.topics.filter((t: string) => t.startsWith('cli/boto/list/'))).toEqual(
      [0, 1, 2, 3, 4].map((i) => `cli/boto/list/${i}`),
    );
    const live = got.find((p) => p.topic === 'cli/boto/state')!;
    expect(live.payload.toString()).toBe('{"on":true}');
    expect(live.properties).toMatchObject({
      contentType: 'application/json',
      userProperties: { src: 'boto3' },
      payloadFormatIndicator: true,
      responseTopic: 'cli/boto/reply',
    });
    expect(live.properties?.correlationData?.toString()).toBe('corr');
    expect(out.events).toEqual({
      code: 'UnauthorizedException',
      message:
        'Publishing to $aws/events/presence/connected/x is not allowed: $aws/events/ topics and the answers of the shadow, jobs, streams and provisioning services are published by the broker only',
      status: 401,
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(out.qos).toMatchObject({
      code: 'InvalidRequestException',
      message:
        "1 validation error detected: Value '2' at 'qos' failed to satisfy constraint: Member must have value less than or equal to 1",
      status: 400,
    });
    expect(out.missing).toMatchObject({
      code: 'ResourceNotFoundException',
      message: 'No retained message exists for topic cli/none',
      status: 404,
    });
    expect(out.token).toMatchObject({
      code: 'InvalidRequestException',
      message: 'The nextToken is not valid: bogus',
    });
  });
});

describe.skipIf(!haveAws)('aws iot-data', () => {
  test('publish --retain, get-retained-message, list-retained-messages, an error', async () => {
    const p = await aws([
      'publish',
      '--topic',
      'cli/aws/state',
      '--qos',
      '1',
      '--retain',
      '--cli-binary-format',
      'raw-in-base64-out',
      '--payload',
      '{"v":2}',
      '--user-properties',
      '[{"via":"awscli"}]',
    ]);
    expect(p).toMatchObject({ code: 0 });
    await waitFor(() => got.find((m) => m.topic === 'cli/aws/state'));
    const g = await aws(['get-retained-message', '--topic', 'cli/aws/state']);
    expect(g.code).toBe(0);
    const doc = JSON.parse(g.stdout);
    expect(Buffer.from(doc.payload, 'base64').toString()).toBe('{"v":2}');
    expect(platform.broker.retained('cli/aws/state')?.properties?.userProperties).toEqual({ via: 'awscli' });
    expect(doc).toMatchObject({ topic: 'cli/aws/state', qos: 1, lastModifiedTime: expect.any(Number) });
    const l = await aws(['list-retained-messages', '--page-size', '1']);
    expect(l.code).toBe(0);
    const topics = (JSON.parse(l.stdout).retainedTopics as Array<{ topic: string }>).map((s) => s.topic);
    expect(topics).toContain('cli/aws/state');
    expect(new Set(topics).size).toBe(topics.length);
    const e = await aws(['get-retained-message', '--topic', 'cli/aws/none']);
    expect(e.code).toBe(254);
    expect(e.stderr).toContain(
      'An error occurred (ResourceNotFoundException) when calling the GetRetainedMessage operation: No retained message exists for topic cli/aws/none',
    );
  });
});
