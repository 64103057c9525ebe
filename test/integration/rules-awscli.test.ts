import { AWS, PYTHON, awsEnv, awsTools, run } from '../helpers/tools.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Topic rules through the AWS CLI (Debian awscli, /usr/bin/aws) and boto3 (python3-boto3) against the
 * whole platform: the CLI's `--topic-rule-payload` wrapper goes on the wire as the bare payload
 * (reference §2), and a rule made with boto3 republishes what a device sends. Skipped visibly when a tool
 * is absent (required under CI).
 */

const { haveAws, haveBoto3 } = await awsTools('the rules AWS CLI/boto3 tests');

let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform();
});
afterAll(async () => p?.stop());

const env = () => awsEnv(p);

async function aws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(AWS, [...args, '--endpoint-url', p.endpoints.http, '--output', 'json'], {
      env: env(),
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(!haveAws)('AWS CLI', () => {
  test('create-topic-rule --topic-rule-payload, get-topic-rule, list-topic-rules, bad SQL', async () => {
    const payload = join(p.endpoints.dataDir, 'rule.json');
    writeFileSync(
      payload,
      JSON.stringify({
        sql: "SELECT temperature FROM 'cli/+/data' WHERE temperature > 30",
        awsIotSqlVersion: '2016-03-23',
        ruleDisabled: false,
        actions: [{ republish: { topic: 'cli/alerts', roleArn: 'arn:aws:iam::000000000000:role/x' } }],
      }),
    );
    const c = await aws([
      'iot',
      'create-topic-rule',
      '--rule-name',
      'cli_rule',
      '--topic-rule-payload',
      `file://${payload}`,
    ]);
    expect(c.code, c.stderr).toBe(0);
    const g = await aws(['iot', 'get-topic-rule', '--rule-name', 'cli_rule']);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).rule).toMatchObject({
      ruleName: 'cli_rule',
      awsIotSqlVersion: '2016-03-23',
      actions: [{ republish: { topic: 'cli/alerts' } }],
    });
    const l = await aws(['iot', 'list-topic-rules', '--topic', 'cli/+/data']);
    expect(JSON.parse(l.stdout).rules.map((r: any) => r.ruleName)).toEqual(['cli_rule']);
    writeFileSync(payload, JSON.stringify({ sql: "SELECT * FORM 'x'", actions: [] }));
    const bad = await aws([
      'iot',
      'create-topic-rule',
      '--rule-name',
      'bad_rule',
      '--topic-rule-payload',
      `file://${payload}`,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/SqlParseException/);
    const d = await aws(['iot', 'delete-topic-rule', '--rule-name', 'cli_rule']);
    expect(d.code, d.stderr).toBe(0);
  });
});

describe.skipIf(!haveBoto3)('boto3', () => {
  test('create_topic_rule with errorAction; a device message is republished', async () => {
    const script = `
import boto3, json, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1], region_name='us-east-1')
iot.create_topic_rule(ruleName='boto_rule', topicRulePayload={
  'sql': "SELECT temperature * 2 AS doubled FROM 'boto/+/data'",
  'actions': [{'republish': {'topic': 'boto/out/\${topic(2)}', 'roleArn': 'arn:aws:iam::000000000000:role/x', 'qos': 1}}],
  'errorAction': {'republish': {'topic': 'boto/errors', 'roleArn': 'arn:aws:iam::000000000000:role/x'}},
  'ruleDisabled': False})
r = iot.get_topic_rule(ruleName='boto_rule')
print(json.dumps({'sql': r['rule']['sql'], 'version': r['rule']['awsIotSqlVersion'], 'created': str(type(r['rule']['createdAt']))}))
`;
    const r = await run(PYTHON, ['-c', script, p.endpoints.http], { env: env() });
    expect(JSON.parse(r.stdout)).toEqual({
      sql: "SELECT temperature * 2 AS doubled FROM 'boto/+/data'",
      version: '2015-10-08',
      created: "<class 'datetime.datetime'>",
    });
    const sub = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'boto-sub' });
    const got: string[] = [];
    sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await sub.subscribeAsync('boto/out/#', { qos: 1 });
    const dev = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'boto-dev' });
    await dev.publishAsync('boto/d1/data', JSON.stringify({ temperature: 21 }), { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]).toBe('boto/out/d1 {"doubled":42}');
    await dev.endAsync();
    await sub.endAsync();
  });
});
