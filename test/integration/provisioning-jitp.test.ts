import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  GetRegistrationCodeCommand,
  ListAttachedPoliciesCommand,
  RegisterCACertificateCommand,
} from '@aws-sdk/client-iot';
import type { MqttClient } from 'mqtt';
import { createCa, createKeysAndCertificate } from '../../src/identity/index.js';
import { allowAllDevice, waitFor } from '../helpers/platform.js';
import { awsEnv, awsTools, PYTHON, run } from '../helpers/tools.js';
import { provisioningPlatform, subackCode, type ProvisioningHarness } from './provisioning-helpers.js';

/**
 * Just-in-time provisioning (issue 12; AWS IoT Developer Guide, "Just-in-time provisioning"): a CA registered
 * through boto3 with allowAutoRegistration and a registrationConfig {templateBody, roleArn}; a device with a
 * certificate from that CA connects once (refused, as at AWS: its certificate is registered
 * PENDING_ACTIVATION), is provisioned from the certificate's subject, and its next connection succeeds with
 * what the template's policy allows. The JITR event still comes on
 * $aws/events/certificates/registered/{caCertificateId}.
 */
let h: ProvisioningHarness;
let python: string | null = null;

const JITP_TEMPLATE = {
  Parameters: {
    'AWS::IoT::Certificate::CommonName': { Type: 'String' },
    'AWS::IoT::Certificate::Id': { Type: 'String' },
  },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' },
        AttributePayload: { source: 'jitp' },
      },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
    },
    policy: {
      Type: 'AWS::IoT::Policy',
      Properties: {
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' },
            {
              Effect: 'Allow',
              Action: ['iot:Publish', 'iot:Receive'],
              Resource: 'arn:aws:iot:*:*:topic/jitp/*',
            },
            { Effect: 'Allow', Action: 'iot:Subscribe', Resource: 'arn:aws:iot:*:*:topicfilter/jitp/*' },
          ],
        }),
      },
    },
  },
};

beforeAll(async () => {
  const { haveBoto3 } = await awsTools('the boto3 JITP test');
  if (haveBoto3) python = PYTHON;
  else {
    // A python3 on PATH with boto3 (developer machines); CI has it at PYTHON.
    python = await run('python3', ['-c', 'import boto3']).then(
      () => 'python3',
      () => null,
    );
  }
  h = await provisioningPlatform();
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
});

/** Run a boto3 snippet with `args` (JSON on stdin) bound to `a` and an IoT client `iot`; prints JSON. */
async function boto3(code: string, args: unknown): Promise<any> {
  const script = [
    'import boto3, json, sys',
    'a = json.load(sys.stdin)',
    `iot = boto3.client('iot', endpoint_url=${JSON.stringify(h.platform.endpoints.http)})`,
    code,
  ].join('\n');
  const child = run(python!, ['-c', script], { env: awsEnv(h.platform), timeout: 60_000 });
  child.child.stdin!.end(JSON.stringify(args));
  const { stdout } = await child;
  return JSON.parse(stdout);
}

test('a CA registered through boto3 with a JITP template provisions its device on first connection', async (ctx) => {
  if (!python) return ctx.skip();
  const factory = await createCa('Factory Devices CA');
  const code = (await boto3(
    "print(json.dumps(iot.get_registration_code()['registrationCode']))",
    {},
  )) as string;
  const verification = await createKeysAndCertificate(factory, { commonName: code, keyType: 'ec-p256' });
  const ca = await boto3(
    [
      'r = iot.register_ca_certificate(caCertificate=a["ca"], verificationCertificate=a["verification"],',
      '  setAsActive=True, allowAutoRegistration=True,',
      '  registrationConfig={"templateBody": a["template"], "roleArn": "arn:aws:iam::123456789012:role/JITPRole"})',
      'print(json.dumps({"id": r["certificateId"]}))',
    ].join('\n'),
    {
      ca: factory.certPem,
      verification: verification.certificatePem,
      template: JSON.stringify(JITP_TEMPLATE),
    },
  );
  const caId = ca.id as string;

  // A watcher for the JITR event.
  const admin = await allowAllDevice(h.platform, 'watcher-policy');
  const watcher = await h.device(admin.cert, admin.key, 'jitr-watcher');
  const events: any[] = [];
  watcher.on('message', (_t, p) => events.push(JSON.parse(p.toString())));
  await watcher.subscribeAsync(`$aws/events/certificates/registered/${caId}`, { qos: 1 });

  const device = await createKeysAndCertificate(factory, { commonName: 'sensor-42', keyType: 'ec-p256' });
  // The first connection is refused: the certificate is being registered and provisioned.
  await expect(h.device(device.certificatePem, device.privateKeyPem, 'sensor-42')).rejects.toThrow();
  const client: MqttClient = await waitFor(
    () => h.device(device.certificatePem, device.privateKeyPem, 'sensor-42').catch(() => null),
    20_000,
    'the provisioned device to connect',
  );
  try {
    const thing = await h.iot.send(new DescribeThingCommand({ thingName: 'sensor-42' }));
    expect(thing.attributes).toEqual({ source: 'jitp' });
    const cert = await h.iot.send(new DescribeCertificateCommand({ certificateId: device.certificateId }));
    expect(cert.certificateDescription).toMatchObject({ status: 'ACTIVE', caCertificateId: caId });
    const attached = await h.iot.send(
      new ListAttachedPoliciesCommand({ target: cert.certificateDescription!.certificateArn! }),
    );
    expect(attached.policies).toHaveLength(1);
    expect(await subackCode(client, 'jitp/sensor-42')).toBe(1);
    expect(await subackCode(client, 'elsewhere/x')).toBe(128);
    await waitFor(() => events.length > 0, 10_000, 'the JITR event');
    expect(events[0]).toMatchObject({ certificateId: device.certificateId, caCertificateId: caId });
    const { traces } = await h.api('GET', '/provisioning/traces', { query: { thingName: 'sensor-42' } });
    expect(traces[0]).toMatchObject({
      flow: 'jitp',
      result: 'accepted',
      certificateId: device.certificateId,
    });
  } finally {
    await client.endAsync();
    await watcher.endAsync();
  }
}, 120_000);

test('a CA naming a JITP template by name (registered with the JS SDK); a certificate the template refuses stays PENDING_ACTIVATION, traced', async () => {
  await h.template(
    'jitp-named',
    {
      ...JITP_TEMPLATE,
      Parameters: {
        ...JITP_TEMPLATE.Parameters,
        'AWS::IoT::Certificate::CommonName': { Type: 'String', AllowedPattern: '^meter-[0-9]+$' },
      },
    },
    { type: 'JITP' },
  );
  const factory = await createCa('Meter Factory CA');
  const code = (await h.iot.send(new GetRegistrationCodeCommand({}))).registrationCode!;
  const verification = await createKeysAndCertificate(factory, { commonName: code, keyType: 'ec-p256' });
  await h.iot.send(
    new RegisterCACertificateCommand({
      caCertificate: factory.certPem,
      verificationCertificate: verification.certificatePem,
      setAsActive: true,
      allowAutoRegistration: true,
      registrationConfig: { templateName: 'jitp-named' },
    }),
  );
  const good = await createKeysAndCertificate(factory, { commonName: 'meter-7', keyType: 'ec-p256' });
  await expect(h.device(good.certificatePem, good.privateKeyPem, 'meter-7')).rejects.toThrow();
  const client = await waitFor(
    () => h.device(good.certificatePem, good.privateKeyPem, 'meter-7').catch(() => null),
    20_000,
    'meter-7 to connect',
  );
  await client.endAsync();

  const bad = await createKeysAndCertificate(factory, { commonName: 'not a meter', keyType: 'ec-p256' });
  await expect(h.device(bad.certificatePem, bad.privateKeyPem, 'x')).rejects.toThrow();
  const trace = await waitFor(
    async () =>
      (
        await h.api('GET', '/provisioning/traces', {
          query: { templateName: 'jitp-named', result: 'rejected', certificateId: bad.certificateId },
        })
      ).traces[0],
    20_000,
    'the refused JITP trace',
  );
  expect(trace).toMatchObject({ flow: 'jitp', reason: 'parameters' });
  expect(trace.message).toContain('CommonName');
  const cert = await h.iot.send(new DescribeCertificateCommand({ certificateId: bad.certificateId }));
  expect(cert.certificateDescription?.status).toBe('PENDING_ACTIVATION');
  await expect(h.device(bad.certificatePem, bad.privateKeyPem, 'x')).rejects.toThrow();
}, 120_000);
