import { AWS, PYTHON, awsEnv, awsTools, run } from '../helpers/tools.js';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConfirmTopicRuleDestinationCommand,
  CreateTopicRuleCommand,
  CreateTopicRuleDestinationCommand,
  DeleteTopicRuleDestinationCommand,
  GetTopicRuleDestinationCommand,
  IoTClient,
  ListTagsForResourceCommand,
  ListTopicRuleDestinationsCommand,
  TagResourceCommand,
  UpdateTopicRuleDestinationCommand,
} from '@aws-sdk/client-iot';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Topic rule destinations against the whole platform, with a real local HTTP server as the endpoint: the
 * confirmation message it receives, ConfirmTopicRuleDestination (SDK) and the enableUrl (a plain GET), the
 * status rules of UpdateTopicRuleDestination, and the http action's gate: a URL a destination covers is
 * sent to only while it is ENABLED (refusals reach the errorAction); an uncovered URL is sent to unless
 * rules.requireHttpDestinations is on. boto3 and the AWS CLI read destinations by ARN (a greedy path label).
 */

const { haveAws, haveBoto3 } = await awsTools('its destination tests');

interface Received {
  readonly path: string;
  readonly body: string;
}

/** A local HTTP endpoint recording every request (path and body). */
async function endpoint(): Promise<{ server: Server; base: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString() });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

async function platform(overrides: Record<string, unknown> = {}) {
  const p = await startTestPlatform({
    rules: { outbox: { baseBackoffMs: 20, maxBackoffMs: 100, pollMs: 10 }, ...overrides },
  });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  const iot = new IoTClient({
    endpoint: p.endpoints.http,
    region: 'us-east-1',
    credentials: { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! },
    maxAttempts: 1,
  });
  const device = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'dest-device', protocolVersion: 5 });
  const errors: Array<{ failures: Array<{ errorMessage: string }> }> = [];
  device.on('message', (topic, payload) => {
    if (topic === 'dest/errors') errors.push(JSON.parse(payload.toString()));
  });
  await device.subscribeAsync('dest/errors', { qos: 1 });
  return { p, iot, device, errors };
}

let p: TestPlatform;
let iot: IoTClient;
let device: MqttClient;
let errors: Array<{ failures: Array<{ errorMessage: string }> }>;
let hook: Awaited<ReturnType<typeof endpoint>>;

beforeAll(async () => {
  hook = await endpoint();
  ({ p, iot, device, errors } = await platform());
  await iot.send(
    new CreateTopicRuleCommand({
      ruleName: 'to_hook',
      topicRulePayload: {
        sql: "SELECT * FROM 'dest/in'",
        actions: [{ http: { url: `${hook.base}/hook/data` } }],
        errorAction: { republish: { roleArn: 'arn:aws:iam::000000000000:role/r', topic: 'dest/errors' } },
      },
    }),
  );
});
afterAll(async () => {
  await device?.endAsync();
  iot?.destroy();
  await p?.stop();
  await new Promise((resolve) => hook?.server.close(resolve));
});

let seq = 0;
/** Publish one message; resolve whether it reached the endpoint (true) or the errorAction (its message). */
async function send(): Promise<true | string> {
  const n = ++seq;
  const before = errors.length;
  await device.publishAsync('dest/in', JSON.stringify({ n }), { qos: 1 });
  return waitFor(
    () =>
      hook.received.some((r) => r.path === '/hook/data' && JSON.parse(r.body).n === n)
        ? (true as const)
        : errors.length > before
          ? errors[errors.length - 1]!.failures[0]!.errorMessage
          : undefined,
    5000,
    `message ${n} delivered or refused`,
  );
}

const status = async (arn: string) =>
  (await iot.send(new GetTopicRuleDestinationCommand({ arn }))).topicRuleDestination!;

/** The confirmation messages the endpoint received for a destination, in order. */
const confirmations = (arn: string) =>
  hook.received
    .filter((r) => r.path === '/hook')
    .map((r) => JSON.parse(r.body) as Record<string, string>)
    .filter((m) => m.arn === arn);

async function failure(promise: Promise<unknown>) {
  const err = (await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  )) as { name: string; message: string };
  return { name: err.name, message: err.message };
}

describe('the confirmation flow and the http action gate', () => {
  let arn: string;

  test('with no destination covering it, a URL is sent to (rules.requireHttpDestinations is off)', async () => {
    expect(await send()).toBe(true);
  });

  test('CreateTopicRuleDestination: IN_PROGRESS, and the endpoint receives the confirmation message', async () => {
    const created = await iot.send(
      new CreateTopicRuleDestinationCommand({
        destinationConfiguration: { httpUrlConfiguration: { confirmationUrl: `${hook.base}/hook` } },
      }),
    );
    const d = created.topicRuleDestination!;
    arn = d.arn!;
    expect(arn).toMatch(/^arn:aws:iot:us-east-1:000000000000:ruledestination\/http\/[0-9a-f-]{36}$/);
    expect(d).toMatchObject({
      status: 'IN_PROGRESS',
      httpUrlProperties: { confirmationUrl: `${hook.base}/hook` },
    });
    expect(d.createdAt).toBeInstanceOf(Date);
    const [message] = await waitFor(() => (confirmations(arn).length ? confirmations(arn) : undefined));
    expect(message).toEqual({
      arn,
      confirmationToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      enableUrl: `${p.endpoints.http}/confirmdestination/${message!.confirmationToken}`,
      messageType: 'DestinationConfirmation',
    });
    expect(await status(arn)).toMatchObject({ status: 'IN_PROGRESS' });
    const listed = await iot.send(new ListTopicRuleDestinationsCommand({}));
    expect(listed.destinationSummaries).toEqual([
      expect.objectContaining({
        arn,
        status: 'IN_PROGRESS',
        httpUrlSummary: { confirmationUrl: `${hook.base}/hook` },
      }),
    ]);
  });

  test('while IN_PROGRESS the covered URL is refused, and the refusal reaches the errorAction', async () => {
    const refused = await send();
    expect(refused).toContain(`topic rule destination ${arn}`);
    expect(refused).toContain('IN_PROGRESS, not ENABLED');
    expect(
      await failure(iot.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' }))),
    ).toMatchObject({ name: 'InvalidRequestException' });
  });

  test('ConfirmTopicRuleDestination with the token enables it: the URL is sent to', async () => {
    const token = confirmations(arn)[0]!.confirmationToken!;
    await iot.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: token }));
    expect(await status(arn)).toMatchObject({ status: 'ENABLED' });
    expect(await send()).toBe(true);
    // Confirming again changes nothing; an unknown token is refused.
    await iot.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: token }));
    expect(
      await failure(iot.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: 'f'.repeat(64) }))),
    ).toMatchObject({ name: 'InvalidRequestException' });
  });

  test('DISABLED stops traffic without a new confirmation; ENABLED (only from DISABLED) resumes it', async () => {
    await iot.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'DISABLED' }));
    expect(await send()).toContain('DISABLED, not ENABLED');
    await iot.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' }));
    expect(await send()).toBe(true);
    for (const to of ['ERROR', 'DELETING'] as const)
      expect(
        await failure(iot.send(new UpdateTopicRuleDestinationCommand({ arn, status: to }))),
      ).toMatchObject({
        name: 'InvalidRequestException',
        message: `A topic rule destination in status ENABLED cannot be set to ${to}.`,
      });
  });

  test('IN_PROGRESS sends a new token (the old one stops working); a plain GET of the enableUrl confirms', async () => {
    const old = confirmations(arn)[0]!.confirmationToken!;
    await iot.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'IN_PROGRESS' }));
    const second = await waitFor(() => confirmations(arn)[1]);
    expect(second.confirmationToken).not.toBe(old);
    expect(await send()).toContain('IN_PROGRESS');
    expect(
      await failure(iot.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: old }))),
    ).toMatchObject({ name: 'InvalidRequestException' });
    // The enableUrl needs no credentials: the token in it is the proof.
    const res = await fetch(second.enableUrl!);
    expect(res.status).toBe(200);
    expect(await status(arn)).toMatchObject({ status: 'ENABLED' });
    // Without a valid token, an unsigned request is refused like any other.
    expect((await fetch(`${p.endpoints.http}/confirmdestination/${'0'.repeat(64)}`)).status).toBe(400);
    expect((await fetch(`${p.endpoints.http}/destinations`)).status).toBe(403);
  });

  test('the most specific destination decides: a longer confirmationUrl IN_PROGRESS refuses what /hook allows', async () => {
    const inner = await iot.send(
      new CreateTopicRuleDestinationCommand({
        destinationConfiguration: { httpUrlConfiguration: { confirmationUrl: `${hook.base}/hook/data` } },
      }),
    );
    const innerArn = inner.topicRuleDestination!.arn!;
    expect(await send()).toContain(innerArn);
    await iot.send(new DeleteTopicRuleDestinationCommand({ arn: innerArn }));
    expect(await send()).toBe(true);
    expect(await failure(status(innerArn))).toMatchObject({ name: 'InvalidRequestException' });
  });

  test('one destination per confirmationUrl; non-HTTP URLs and VPC destinations are refused', async () => {
    const create = (destinationConfiguration: Record<string, unknown>) =>
      failure(iot.send(new CreateTopicRuleDestinationCommand({ destinationConfiguration })));
    expect(await create({ httpUrlConfiguration: { confirmationUrl: `${hook.base}/hook` } })).toMatchObject({
      name: 'ResourceAlreadyExistsException',
    });
    expect(await create({ httpUrlConfiguration: { confirmationUrl: 'ftp://example/x' } })).toMatchObject({
      name: 'InvalidRequestException',
    });
    expect(
      await create({ vpcConfiguration: { subnetIds: ['s'], vpcId: 'v', roleArn: 'arn:aws:iam::0:role/r' } }),
    ).toMatchObject({ name: 'InvalidRequestException' });
  });

  test('a confirmation the endpoint cannot receive leaves the destination in ERROR with the reason', async () => {
    const closed = await endpoint();
    await new Promise((resolve) => closed.server.close(resolve));
    const d = await iot.send(
      new CreateTopicRuleDestinationCommand({
        destinationConfiguration: { httpUrlConfiguration: { confirmationUrl: `${closed.base}/gone` } },
      }),
    );
    const errArn = d.topicRuleDestination!.arn!;
    const got = await waitFor(async () => {
      const s = await status(errArn);
      return s.status === 'ERROR' ? s : undefined;
    });
    expect(got.statusReason).toMatch(/confirmation request failed: ECONNREFUSED/);
    // From ERROR, IN_PROGRESS retries the confirmation.
    await iot.send(new UpdateTopicRuleDestinationCommand({ arn: errArn, status: 'IN_PROGRESS' }));
    await waitFor(async () => (await status(errArn)).status === 'ERROR');
  });

  test('destinations can be tagged; deleting one deletes its tags', async () => {
    await iot.send(new TagResourceCommand({ resourceArn: arn, tags: [{ Key: 'team', Value: 'data' }] }));
    expect((await iot.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual([
      { Key: 'team', Value: 'data' },
    ]);

    const other = await iot.send(
      new CreateTopicRuleDestinationCommand({
        destinationConfiguration: { httpUrlConfiguration: { confirmationUrl: `${hook.base}/tagged` } },
      }),
    );
    const otherArn = other.topicRuleDestination!.arn!;
    await iot.send(new TagResourceCommand({ resourceArn: otherArn, tags: [{ Key: 'k', Value: 'v' }] }));
    await iot.send(new DeleteTopicRuleDestinationCommand({ arn: otherArn }));
    expect(await failure(iot.send(new ListTagsForResourceCommand({ resourceArn: otherArn })))).toMatchObject({
      name: 'ResourceNotFoundException',
    });
    const rows = await p.db.query<{ n: unknown }>(
      'SELECT count(*) AS n FROM resource_tags WHERE resource_arn = $1',
      [otherArn],
    );
    expect(Number(rows[0]!.n)).toBe(0);
  });
});

const env = () => awsEnv(p);

describe.skipIf(!haveBoto3)('boto3', () => {
  test('list, get by ARN (a greedy path label), update and confirm', async () => {
    const script = `
import boto3, json, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1], region_name='us-east-1')
arns = [d['arn'] for d in iot.list_topic_rule_destinations()['destinationSummaries']]
hook = [a for a in arns if iot.get_topic_rule_destination(arn=a)['topicRuleDestination']['httpUrlProperties']['confirmationUrl'].endswith('/hook')][0]
iot.update_topic_rule_destination(arn=hook, status='DISABLED')
disabled = iot.get_topic_rule_destination(arn=hook)['topicRuleDestination']['status']
iot.update_topic_rule_destination(arn=hook, status='ENABLED')
try:
    iot.confirm_topic_rule_destination(confirmationToken='nope')
    err = None
except iot.exceptions.InvalidRequestException:
    err = 'InvalidRequestException'
print(json.dumps({'hook': hook, 'disabled': disabled,
                  'now': iot.get_topic_rule_destination(arn=hook)['topicRuleDestination']['status'], 'err': err}))
`;
    const r = await run(PYTHON, ['-c', script, p.endpoints.http], { env: env() });
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ disabled: 'DISABLED', now: 'ENABLED', err: 'InvalidRequestException' });
    expect(out.hook).toMatch(/:ruledestination\/http\//);
  });
});

describe.skipIf(!haveAws)('AWS CLI', () => {
  test('list-topic-rule-destinations, get-topic-rule-destination, delete-topic-rule-destination', async () => {
    const cli = async (args: string[]) =>
      JSON.parse(
        (
          await run(AWS, ['iot', ...args, '--endpoint-url', p.endpoints.http, '--output', 'json'], {
            env: env(),
          })
        ).stdout || '{}',
      );
    const listed = await cli(['list-topic-rule-destinations']);
    const gone = listed.destinationSummaries.find((d: { status: string }) => d.status === 'ERROR');
    const got = await cli(['get-topic-rule-destination', '--arn', gone.arn]);
    expect(got.topicRuleDestination).toMatchObject({ arn: gone.arn, status: 'ERROR' });
    await cli(['delete-topic-rule-destination', '--arn', gone.arn]);
    const after = await cli(['list-topic-rule-destinations']);
    expect(after.destinationSummaries.map((d: { arn: string }) => d.arn)).not.toContain(gone.arn);
  });
});

describe('rules.requireHttpDestinations', () => {
  test('on: a URL no ENABLED destination covers is refused; confirming a destination opens it', async () => {
    const strict = await platform({ requireHttpDestinations: true });
    const own = await endpoint();
    try {
      await strict.iot.send(
        new CreateTopicRuleCommand({
          ruleName: 'strict_hook',
          topicRulePayload: {
            sql: "SELECT * FROM 'strict/in'",
            actions: [{ http: { url: `${own.base}/api/data` } }],
            errorAction: { republish: { roleArn: 'arn:aws:iam::000000000000:role/r', topic: 'dest/errors' } },
          },
        }),
      );
      await strict.device.publishAsync('strict/in', '{"a":1}', { qos: 1 });
      const [refusal] = await waitFor(() => (strict.errors.length ? strict.errors : undefined));
      expect(refusal!.failures[0]!.errorMessage).toContain('rules.requireHttpDestinations is on');
      expect(own.received).toEqual([]);

      await strict.iot.send(
        new CreateTopicRuleDestinationCommand({
          destinationConfiguration: { httpUrlConfiguration: { confirmationUrl: `${own.base}/api` } },
        }),
      );
      const message = await waitFor(() => own.received.find((r) => r.path === '/api'));
      const { confirmationToken } = JSON.parse(message.body) as { confirmationToken: string };
      await strict.iot.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken }));
      await strict.device.publishAsync('strict/in', '{"a":2}', { qos: 1 });
      await waitFor(() => own.received.some((r) => r.path === '/api/data' && r.body === '{"a":2}'));
    } finally {
      await strict.device.endAsync();
      strict.iot.destroy();
      await strict.p.stop();
      await new Promise((resolve) => own.server.close(resolve));
    }
  });
});
