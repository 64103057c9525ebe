import {
  GetRetainedMessageCommand,
  IoTDataPlaneClient,
  ListRetainedMessagesCommand,
  PublishCommand,
  paginateListRetainedMessages,
} from '@aws-sdk/client-iot-data-plane';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The HTTP data plane through `@aws-sdk/client-iot-data-plane` (reference §4, signing name `iotdata`):
 * Publish with qos, retain and the MQTT 5 properties AWS carries in query parameters and headers, seen by a
 * real MQTT 5 subscriber; GetRetainedMessage; ListRetainedMessages paged; AWS's error documents.
 */

let platform: TestPlatform;
let data: IoTDataPlaneClient;
let readOnly: IoTDataPlaneClient;
let sub: MqttClient;
const got: Array<{ topic: string; payload: string; packet: mqtt.IPublishPacket }> = [];

const client = (key: { accessKeyId: string; secretAccessKey: string }) =>
  new IoTDataPlaneClient({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: key,
    maxAttempts: 1,
  });

beforeAll(async () => {
  platform = await startTestPlatform();
  data = client(await platform.credentials.create('data-admin', 'admin'));
  readOnly = client(await platform.credentials.create('data-reader', 'read-only'));
  sub = await mqtt.connectAsync(platform.endpoints.mqtt!, {
    protocolVersion: 5,
    clientId: 'dp-sub',
    reconnectPeriod: 0,
  });
  sub.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), packet }));
  await sub.subscribeAsync('dp/#', { qos: 1 });
});
afterAll(async () => {
  await sub?.endAsync();
  await platform?.stop();
});

/** The AWS error an SDK call rejects with, as the fields a caller reads. */
async function awsError(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode: number; requestId?: string }; $fault: string };
    return {
      name: e.name,
      message: e.message,
      status: e.$metadata.httpStatusCode,
      fault: e.$fault,
      requestId: e.$metadata.requestId,
    };
  }
  throw new Error('the call succeeded but should have failed');
}

describe('Publish', () => {
  it('delivers payload, qos and every MQTT 5 property to a subscriber', async () => {
    const out = await data.send(
      new PublishCommand({
        topic: 'dp/props',
        qos: 1,
        payload: Buffer.from('{"t":21.5}'),
        contentType: 'application/json',
        responseTopic: 'dp/reply',
        messageExpiry: 3600,
        userProperties: JSON.stringify([
          { deviceName: 'alpha' },
          { deviceCnt: '45' },
          { deviceName: 'beta' },
        ]),
        payloadFormatIndicator: 'UTF8_DATA',
        correlationData: Buffer.from('req-7').toString('base64'),
      }),
    );
    expect(out.$metadata.httpStatusCode).toBe(200);
    const m = await waitFor(() => got.find((g) => g.topic === 'dp/props'));
    expect(m.payload).toBe('{"t":21.5}');
    expect(m.packet.qos).toBe(1);
    expect(m.packet.retain).toBe(false);
    const p = m.packet.properties!;
    expect(p.contentType).toBe('application/json');
    expect(p.responseTopic).toBe('dp/reply');
    expect(p.payloadFormatIndicator).toBe(true);
    expect(p.correlationData?.toString()).toBe('req-7');
    expect(p.userProperties).toEqual({ deviceName: ['alpha', 'beta'], deviceCnt: '45' });
    expect(p.messageExpiryInterval).toBeGreaterThan(3590);
    expect(p.messageExpiryInterval).toBeLessThanOrEqual(3600);
  });

  it('retains, reads back with GetRetainedMessage, and an empty retained payload deletes it', async () => {
    const before = Date.now();
    await data.send(
      new PublishCommand({
        topic: 'dp/state/a b',
        qos: 1,
        retain: true,
        payload: Buffer.from([0, 1, 2, 255]),
        userProperties: JSON.stringify([{ k: 'v' }]),
      }),
    );
    const r = await data.send(new GetRetainedMessageCommand({ topic: 'dp/state/a b' }));
    expect(r.topic).toBe('dp/state/a b');
    expect(Buffer.from(r.payload!)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(r.qos).toBe(1);
    expect(r.lastModifiedTime).toBeGreaterThanOrEqual(before);
    expect(r.lastModifiedTime).toBeLessThanOrEqual(Date.now());
    expect(JSON.parse(Buffer.from(r.userProperties!).toString())).toEqual([{ k: 'v' }]);
    // Durable: the 200 came after the store write (retained messages are persisted).
    expect(platform.broker.retained('dp/state/a b')?.payload).toEqual(Buffer.from([0, 1, 2, 255]));

    await data.send(new PublishCommand({ topic: 'dp/state/a b', retain: true }));
    const e = await awsError(data.send(new GetRetainedMessageCommand({ topic: 'dp/state/a b' })));
    expect(e).toMatchObject({
      name: 'ResourceNotFoundException',
      message: 'No retained message exists for topic dp/state/a b',
      status: 404,
      fault: 'client',
    });
    expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses what an MQTT PUBLISH could not do, in AWS error shape', async () => {
    expect(
      await awsError(data.send(new PublishCommand({ topic: '$aws/events/presence/connected/x' }))),
    ).toMatchObject({
      name: 'UnauthorizedException',
      message:
        'Publishing to $aws/events/presence/connected/x is not allowed: $aws/events/ topics and the answers of the shadow, jobs, streams and provisioning services are published by the broker only',
      status: 401,
    });
    expect(
      await awsError(data.send(new PublishCommand({ topic: 'dp/too-big', payload: Buffer.alloc(131_073) }))),
    ).toMatchObject({
      name: 'RequestEntityTooLargeException',
      message: 'The payload exceeds the maximum size of 131072 bytes (limits.maxPayloadBytes).',
      status: 413,
    });
    expect(await awsError(data.send(new PublishCommand({ topic: 'dp/q', qos: 2 })))).toMatchObject({
      name: 'InvalidRequestException',
      message:
        "1 validation error detected: Value '2' at 'qos' failed to satisfy constraint: Member must have value less than or equal to 1",
      status: 400,
    });
    expect(await awsError(data.send(new PublishCommand({ topic: 'dp/1/2/3/4/5/6/7/8' })))).toMatchObject({
      name: 'InvalidRequestException',
      message: 'Invalid topic "dp/1/2/3/4/5/6/7/8": the topic has more levels than limits.maxTopicLevels',
      status: 400,
    });
    expect(await awsError(data.send(new PublishCommand({ topic: 'dp/+' })))).toMatchObject({
      name: 'InvalidRequestException',
      message: 'Invalid topic "dp/+": a topic name cannot contain + or #',
    });
    expect(
      await awsError(
        data.send(new PublishCommand({ topic: 'dp/u', userProperties: JSON.stringify({ k: 'v' }) })),
      ),
    ).toMatchObject({
      name: 'InvalidRequestException',
      message: 'The x-amz-mqtt5-user-properties header is not valid: not a JSON array of single-pair objects',
    });
    expect(
      await awsError(
        data.send(
          new PublishCommand({
            topic: 'dp/u',
            payloadFormatIndicator: 'UTF8_DATA',
            payload: Buffer.from([0xff]),
          }),
        ),
      ),
    ).toMatchObject({
      name: 'InvalidRequestException',
      message: 'The payload is not valid UTF-8, but the payload format indicator is UTF8_DATA.',
    });
    expect(got.some((g) => g.topic === 'dp/too-big' || g.topic === 'dp/q' || g.topic === 'dp/u')).toBe(false);
  });

  it('is refused to a read-only key, which may still read retained messages', async () => {
    expect(await awsError(readOnly.send(new PublishCommand({ topic: 'dp/ro' })))).toMatchObject({
      name: 'AccessDeniedException',
      status: 403,
    });
    await data.send(new PublishCommand({ topic: 'dp/ro', retain: true, payload: Buffer.from('x') }));
    expect((await readOnly.send(new GetRetainedMessageCommand({ topic: 'dp/ro' }))).topic).toBe('dp/ro');
  });

  it('counts as an API request by operation', async () => {
    expect(
      await scrapeMetric(platform, 'thingstead_api_requests_total', /operation="Publish",outcome="OK"/),
    ).toBeGreaterThan(0);
  });
});

describe('ListRetainedMessages', () => {
  it('pages through every retained topic once, with summaries', async () => {
    const topics = Array.from({ length: 7 }, (_, i) => `dp/list/${i}`);
    for (const topic of topics)
      await data.send(new PublishCommand({ topic, retain: true, qos: 1, payload: Buffer.from(topic) }));
    const first = await data.send(new ListRetainedMessagesCommand({ maxResults: 3 }));
    expect(first.retainedTopics).toHaveLength(3);
    expect(first.nextToken).toEqual(expect.any(String));
    const seen: string[] = [];
    for await (const page of paginateListRetainedMessages({ client: data, pageSize: 3 }, {})) {
      for (const s of page.retainedTopics ?? []) {
        seen.push(s.topic!);
        if (s.topic!.startsWith('dp/list/')) {
          expect(s.payloadSize).toBe(Buffer.byteLength(s.topic!));
          expect(s.qos).toBe(1);
          expect(s.lastModifiedTime).toBeGreaterThan(Date.now() - 60_000);
        }
      }
    }
    expect(seen.filter((t) => t.startsWith('dp/list/'))).toEqual(topics);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(platform.broker.listRetained().length);
  });

  it('lists a topic cleared and retained again once, and refuses bad paging input', async () => {
    const page = await data.send(new ListRetainedMessagesCommand({ maxResults: 1 }));
    await data.send(new PublishCommand({ topic: 'dp/list/0', retain: true }));
    await data.send(new PublishCommand({ topic: 'dp/list/0', retain: true, payload: Buffer.from('again') }));
    const rest: string[] = [];
    let token = page.nextToken;
    while (token) {
      const p = await data.send(new ListRetainedMessagesCommand({ maxResults: 2, nextToken: token }));
      rest.push(...(p.retainedTopics ?? []).map((s) => s.topic!));
      token = p.nextToken;
    }
    expect(rest.filter((t) => t === 'dp/list/0')).toHaveLength(1);
    expect(rest.at(-1)).toBe('dp/list/0');

    expect(await awsError(data.send(new ListRetainedMessagesCommand({ maxResults: 201 })))).toMatchObject({
      name: 'InvalidRequestException',
      message:
        "1 validation error detected: Value '201' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 200",
      status: 400,
    });
    expect(await awsError(data.send(new ListRetainedMessagesCommand({ nextToken: 'bogus' })))).toMatchObject({
      name: 'InvalidRequestException',
      message: 'The nextToken is not valid: bogus',
      status: 400,
    });
  });
});
