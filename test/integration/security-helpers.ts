import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/** A platform with anonymous access off, and an AWS SDK client with an admin key. */
export async function securePlatform(): Promise<{ platform: TestPlatform; iot: IoTClient; account: string }> {
  const platform = await startTestPlatform({ mqtt: { allowAnonymous: false } });
  const key = await platform.credentials.create(`test-${Date.now()}`, 'admin');
  const iot = new IoTClient({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
  return { platform, iot, account: `arn:aws:iot:${platform.config.region}:${platform.config.accountId}` };
}

export interface Device {
  readonly thingName: string;
  readonly certificateId: string;
  readonly certificateArn: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** Thing + ACTIVE certificate (attached to the thing) + optional policy attached to the certificate. */
export async function createDevice(
  iot: IoTClient,
  thingName: string,
  policy?: { name: string; statements: object[] },
): Promise<Device> {
  await iot.send(new CreateThingCommand({ thingName }));
  const c = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
  await iot.send(new AttachThingPrincipalCommand({ thingName, principal: c.certificateArn! }));
  if (policy) {
    await iot.send(
      new CreatePolicyCommand({
        policyName: policy.name,
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: policy.statements }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: policy.name, target: c.certificateArn! }));
  }
  return {
    thingName,
    certificateId: c.certificateId!,
    certificateArn: c.certificateArn!,
    certPem: c.certificatePem!,
    keyPem: c.keyPair!.PrivateKey!,
  };
}

/** Connect over mutual TLS with MQTT 5 (no reconnects, so a refusal is final and visible). */
export function connectTls(
  platform: TestPlatform,
  creds: { certPem: string; keyPem: string },
  clientId: string,
  extra: IClientOptions = {},
  /** Collects received topics from the first packet on (queued messages arrive right after CONNACK). */
  got?: string[],
): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${platform.endpoints.mqttsPort}`, {
    clientId,
    cert: creds.certPem,
    key: creds.keyPem,
    ca: platform.tls.caPem,
    rejectUnauthorized: true,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  });
  if (got) client.on('message', (topic) => got.push(topic));
  // Settle on CONNACK, a CONNACK refusal, or the socket closing first (a TLS-level refusal).
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => {
      client.end(true);
      reject(Object.assign(new Error('connection closed before CONNACK'), { code: undefined }));
    });
  });
}

/** Resolves with the error (CONNACK refusal or socket error) of a connection that must fail. */
export async function refused(promise: Promise<MqttClient>): Promise<{ code?: number; message: string }> {
  try {
    const c = await promise;
    await c.endAsync(true);
  } catch (err) {
    return { code: (err as { code?: number }).code, message: (err as Error).message };
  }
  throw new Error('the connection was accepted but should have been refused');
}

/** Collect the topics a client receives. */
export function collect(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (topic) => got.push(topic));
  return got;
}

/** PUBACK reason code of a QoS 1 publish (MQTT 5): 0 success, 0x87 not authorized. */
export async function publishReason(client: MqttClient, topic: string, retain = false): Promise<number> {
  try {
    const packet = await client.publishAsync(topic, 'x', { qos: 1, retain });
    return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** SUBACK granted code per filter: 0..2 granted QoS, 0x87 not authorized. */
export async function subscribeCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  const map = Object.fromEntries(filters.map((f) => [f, { qos: 0 as const }]));
  try {
    await client.subscribeAsync(map);
    return filters.map(() => 0);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted.map((g) => (typeof g === 'number' ? g : -1));
  }
}

/** Wait until the broker has routed a marker message to the client, proving earlier deliveries are done. */
export async function flush(platform: TestPlatform, got: string[], marker: string): Promise<void> {
  platform.broker.publish({ topic: marker, payload: Buffer.from('m'), qos: 0, retain: false });
  await waitFor(() => got.includes(marker), 5000, `marker ${marker}`);
}

export { waitFor };
