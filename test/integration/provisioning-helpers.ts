import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import {
  CreatePolicyCommand,
  CreateProvisioningClaimCommand,
  CreateProvisioningTemplateCommand,
  IoTClient,
  type CreateProvisioningTemplateCommandInput,
} from '@aws-sdk/client-iot';
import * as x509 from '@peculiar/x509';
import mqtt, { type MqttClient } from 'mqtt';
import { signedFetch } from '../../src/api/index.js';
import type { ConfigInput } from '../../src/config/index.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

x509.cryptoProvider.set(webcrypto as never);

export interface ProvisioningHarness {
  platform: TestPlatform;
  iot: IoTClient;
  arn(type: string, name: string): string;
  /** CreateProvisioningTemplate with a role ARN filled in. */
  template(
    templateName: string,
    body: unknown,
    extra?: Partial<CreateProvisioningTemplateCommandInput>,
  ): Promise<void>;
  policy(name: string, document: unknown): Promise<void>;
  /** A signed call to the HTTP API (Thingstead's own endpoints, e.g. /provisioning/traces). */
  api(method: string, path: string, request?: Parameters<typeof signedFetch>[3]): Promise<any>;
  /** An MQTT.js client on the TLS port with a device certificate (mutual TLS). */
  device(cert: string, key: string, clientId: string): Promise<MqttClient>;
}

/** A platform with TLS (no anonymous access) and an admin SDK client. */
export async function provisioningPlatform(overrides: ConfigInput = {}): Promise<ProvisioningHarness> {
  const o = overrides as Record<string, any>;
  const platform = await startTestPlatform({
    ...overrides,
    mqtt: { allowAnonymous: false, ...(o.mqtt ?? {}) },
    provisioning: { keyType: 'ec-p256', ...(o.provisioning ?? {}) },
  });
  const key = await platform.credentials.create(`prov-${Date.now()}`, 'admin');
  const iot = new IoTClient({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
  const arn = (type: string, name: string) =>
    `arn:aws:iot:${platform.config.region}:${platform.config.accountId}:${type}/${name}`;
  const signing = {
    endpoint: platform.endpoints.http,
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    region: platform.config.region,
  };
  return {
    platform,
    iot,
    arn,
    api: (method, path, request) => signedFetch(signing, method, path, request),
    async template(templateName, body, extra = {}) {
      await iot.send(
        new CreateProvisioningTemplateCommand({
          templateName,
          templateBody: typeof body === 'string' ? body : JSON.stringify(body),
          provisioningRoleArn: 'arn:aws:iam::123456789012:role/provisioning',
          enabled: true,
          ...extra,
        }),
      );
    },
    async policy(name, document) {
      await iot.send(new CreatePolicyCommand({ policyName: name, policyDocument: JSON.stringify(document) }));
    },
    async device(cert, key, clientId) {
      return mqtt.connectAsync(`mqtts://localhost:${platform.endpoints.mqttsPort}`, {
        clientId,
        cert,
        key,
        ca: platform.tls.caPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
    },
  };
}

/** A fresh EC P-256 key and a CSR for it (PEM). */
export async function makeCsr(commonName = 'device'): Promise<{ csr: string; key: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: alg,
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  return { csr: csr.toString('pem'), key };
}

/** A fleet template: thing `dev-<SerialNumber>` in a group, the named policy, the request's certificate. */
export function fleetTemplate(policyName: string, extra: Record<string, unknown> = {}) {
  return {
    Parameters: {
      SerialNumber: { Type: 'String' },
      'AWS::IoT::Certificate::Id': { Type: 'String' },
    },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: { 'Fn::Join': ['', ['dev-', { Ref: 'SerialNumber' }]] },
          AttributePayload: { serial: { Ref: 'SerialNumber' } },
        },
      },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
      },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: policyName } },
    },
    DeviceConfiguration: { telemetryTopic: 'telemetry' },
    ...extra,
  };
}

/** The device policy a fleet template attaches: connect as its thing, publish and receive on its own topic. */
export function devicePolicy(region: string, accountId: string) {
  const a = `arn:aws:iot:${region}:${accountId}`;
  return {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${a}:client/\${iot:Connection.Thing.ThingName}` },
      {
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: `${a}:topic/telemetry/\${iot:Connection.Thing.ThingName}`,
      },
      {
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: `${a}:topicfilter/telemetry/\${iot:Connection.Thing.ThingName}`,
      },
    ],
  };
}

/** The SUBACK code for one filter: the granted QoS, or 128 when refused (MQTT.js rejects that). */
export async function subackCode(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    return granted[0]!.qos;
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (packet?.granted) return packet.granted[0]!;
    throw err;
  }
}

/** A claim device on MQTT.js: one request at a time, answers collected by topic (JSON). */
export async function claimDevice(
  h: ProvisioningHarness,
  templateName: string,
  clientId: string,
  credentials?: { cert: string; key: string },
) {
  const c = credentials
    ? { certificatePem: credentials.cert, keyPair: { PrivateKey: credentials.key }, certificateId: '' }
    : await h.iot.send(new CreateProvisioningClaimCommand({ templateName }));
  const client = await h.device(c.certificatePem!, c.keyPair!.PrivateKey!, clientId);
  const answers = new Map<string, any>();
  client.on('message', (topic, payload) => answers.set(topic, JSON.parse(payload.toString())));
  await client.subscribeAsync(
    [
      '$aws/certificates/create/json/+',
      '$aws/certificates/create-from-csr/json/+',
      `$aws/provisioning-templates/${templateName}/provision/json/+`,
    ].flatMap((f) => [f.replace('+', 'accepted'), f.replace('+', 'rejected')]),
    { qos: 1 },
  );
  const request = async (topic: string, body: unknown): Promise<{ accepted: boolean; body: any }> => {
    answers.delete(`${topic}/accepted`);
    answers.delete(`${topic}/rejected`);
    await client.publishAsync(topic, JSON.stringify(body), { qos: 1 });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (answers.has(`${topic}/accepted`)) return { accepted: true, body: answers.get(`${topic}/accepted`) };
      if (answers.has(`${topic}/rejected`))
        return { accepted: false, body: answers.get(`${topic}/rejected`) };
      if (Date.now() > deadline) throw new Error(`no answer on ${topic}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    client,
    claimCertificateId: c.certificateId!,
    request,
    /** A new certificate and its ownership token. */
    async certificate() {
      const r = await request('$aws/certificates/create/json', {});
      if (!r.accepted) throw new Error(`create refused: ${JSON.stringify(r.body)}`);
      return r.body as {
        certificateId: string;
        certificatePem: string;
        privateKey: string;
        certificateOwnershipToken: string;
      };
    },
    async register(token: string, parameters: Record<string, string>, template = templateName) {
      if (template !== templateName)
        await client.subscribeAsync(
          ['accepted', 'rejected'].map((s) => `$aws/provisioning-templates/${template}/provision/json/${s}`),
          { qos: 1 },
        );
      return request(`$aws/provisioning-templates/${template}/provision/json`, {
        certificateOwnershipToken: token,
        parameters,
      });
    },
  };
}
