import {
  AddThingToThingGroupCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import { IoTJobsDataPlaneClient } from '@aws-sdk/client-iot-jobs-data-plane';
import mqtt, { type MqttClient } from 'mqtt';
import type { ConfigInput } from '../../src/config/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

export interface JobsHarness {
  platform: TestPlatform;
  iot: IoTClient;
  data: IoTJobsDataPlaneClient;
  arn(type: string, name: string): string;
  things(...names: string[]): Promise<void>;
  group(name: string, members: string[]): Promise<void>;
}

/** A platform (anonymous MQTT on, fast job minutes and ticks) with admin SDK clients for both job APIs. */
export async function jobsPlatform(overrides: ConfigInput = {}): Promise<JobsHarness> {
  const platform = await startTestPlatform({
    ...overrides,
    jobs: { minuteMs: 1000, tickMs: 25, ...((overrides as Record<string, any>).jobs ?? {}) },
  });
  const key = await platform.credentials.create(`jobs-${Date.now()}`, 'admin');
  const common = {
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  };
  const iot = new IoTClient(common);
  const arn = (type: string, name: string) =>
    `arn:aws:iot:${platform.config.region}:${platform.config.accountId}:${type}/${name}`;
  return {
    platform,
    iot,
    data: new IoTJobsDataPlaneClient(common),
    arn,
    async things(...names) {
      for (const thingName of names) await iot.send(new CreateThingCommand({ thingName }));
    },
    async group(name, members) {
      await iot.send(new CreateThingGroupCommand({ thingGroupName: name }));
      for (const thingName of members)
        await iot.send(new AddThingToThingGroupCommand({ thingGroupName: name, thingName }));
    },
  };
}

/** A device on the plain MQTT port (anonymous loopback), recording every message by topic. */
export async function jobsDevice(platform: TestPlatform, clientId: string, subscribe: string[] = []) {
  const client: MqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${platform.endpoints.mqttPort}`, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  const got: Array<{ topic: string; body: any }> = [];
  client.on('message', (topic, payload) => {
    let body: unknown = payload.toString();
    try {
      body = JSON.parse(payload.toString());
    } catch {
      // keep text
    }
    got.push({ topic, body });
  });
  if (subscribe.length) await client.subscribeAsync(subscribe, { qos: 1 });
  let n = 0;
  return {
    client,
    got,
    /** Publish a request and wait for its accepted or rejected reply (matched by clientToken). */
    async request(topic: string, body: Record<string, unknown> = {}) {
      const clientToken = `${clientId}-${++n}`;
      await client.publishAsync(topic, JSON.stringify({ ...body, clientToken }), { qos: 1 });
      const reply = await waitFor(
        () => got.find((m) => m.body?.clientToken === clientToken && m.topic.startsWith(topic + '/')),
        5000,
        `reply to ${topic}`,
      );
      return { topic: reply.topic, outcome: reply.topic.slice(topic.length + 1), body: reply.body };
    },
    /** Wait for a message on `topic` (after the first `skip` ones). */
    next(topic: string, skip = 0) {
      return waitFor(() => got.filter((m) => m.topic === topic)[skip], 5000, `message on ${topic}`);
    },
    count: (topic: string) => got.filter((m) => m.topic === topic).length,
    end: () => client.endAsync(),
  };
}
