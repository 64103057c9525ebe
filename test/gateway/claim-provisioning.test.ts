import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreatePolicyCommand,
  CreateProvisioningClaimCommand,
  CreateProvisioningTemplateCommand,
  DescribeThingCommand,
} from '@aws-sdk/client-iot';
import {
  loadIdentity,
  parseMapping,
  provisionByClaim,
  ProvisioningError,
  startGateway,
  type Gateway,
} from '../../src/gateway/index.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';
import { admin, gatewayPlatform, startModbusDevice, freePort, tempDir } from './helpers.js';

// The gateway's side of fleet provisioning by claim (reference §8.4): with no certificate of its own it
// connects with the claim certificate, gets a key and certificate ($aws/certificates/create/json), registers
// itself with the template ($aws/provisioning-templates/{name}/provision/json), keeps the identity, and then
// runs on it: its readings and its shadow flow under the new certificate.

let platform: TestPlatform;
let a: Awaited<ReturnType<typeof admin>>;
let gateway: Gateway | undefined;
let plc: Awaited<ReturnType<typeof startModbusDevice>> | undefined;
let provisioningOn = false;

beforeAll(async () => {
  platform = await gatewayPlatform();
  provisioningOn = (platform as unknown as { provisioning?: unknown }).provisioning !== undefined;
  if (!provisioningOn) {
    console.warn(
      'SKIPPING: claim provisioning test: this build of the platform has no fleet provisioning wired in (issue 12)',
    );
    return;
  }
  a = await admin(platform);
  const { region, accountId } = platform.config;
  const arn = `arn:aws:iot:${region}:${accountId}`;
  await a.iot.send(
    new CreatePolicyCommand({
      policyName: 'gateway-fleet',
      policyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: `${arn}:client/\${iot:Connection.Thing.ThingName}`,
          },
          {
            Effect: 'Allow',
            Action: ['iot:Publish', 'iot:Receive'],
            Resource: [
              `${arn}:topic/things/\${iot:Connection.Thing.ThingName}/*`,
              `${arn}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/*`,
            ],
          },
          {
            Effect: 'Allow',
            Action: 'iot:Subscribe',
            Resource: `${arn}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/*`,
          },
        ],
      }),
    }),
  );
  await a.iot.send(
    new CreateProvisioningTemplateCommand({
      templateName: 'gateways',
      provisioningRoleArn: 'arn:aws:iam::123456789012:role/provisioning',
      enabled: true,
      templateBody: JSON.stringify({
        Parameters: { SerialNumber: { Type: 'String' }, 'AWS::IoT::Certificate::Id': { Type: 'String' } },
        Resources: {
          thing: {
            Type: 'AWS::IoT::Thing',
            Properties: {
              ThingName: { 'Fn::Join': ['', ['gw-', { Ref: 'SerialNumber' }]] },
              AttributePayload: { role: 'gateway' },
            },
          },
          certificate: {
            Type: 'AWS::IoT::Certificate',
            Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
          },
          policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'gateway-fleet' } },
        },
        DeviceConfiguration: { site: 'plant-7' },
      }),
    }),
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await plc?.close();
  await platform?.stop();
}, 60_000);

describe('gateway: provisioning by claim', () => {
  it('provisions itself with the claim certificate, then runs on its own identity', async (ctx) => {
    if (!provisioningOn) return ctx.skip();
    const claim = await a.iot.send(new CreateProvisioningClaimCommand({ templateName: 'gateways' }));
    const dir = tempDir('gw-claim-');
    const identityDir = `${dir}/identity`;
    expect(loadIdentity(identityDir)).toBeNull();
    const common = {
      url: platform.endpoints.mqtts!,
      ca: platform.tls.caPem,
      claimCert: claim.certificatePem!,
      claimKey: claim.keyPair!.PrivateKey!,
      parameters: { SerialNumber: '0042' },
      dir: identityDir,
    };
    // A template that does not exist: refused with the platform's error code, and nothing kept.
    const refused = await provisionByClaim({
      ...common,
      templateName: 'no-such-template',
      dir: `${dir}/other`,
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProvisioningError);
    expect((refused as ProvisioningError).step).not.toBe('connect');

    const id = await provisionByClaim({ ...common, templateName: 'gateways' });
    expect(id.thingName).toBe('gw-0042');
    expect(id.deviceConfiguration).toEqual({ site: 'plant-7' });
    expect((await a.iot.send(new DescribeThingCommand({ thingName: 'gw-0042' }))).attributes).toEqual({
      role: 'gateway',
    });
    // A second start finds the identity on disk and asks for nothing.
    expect((await provisionByClaim({ ...common, templateName: 'gateways' })).certificateId).toBe(
      id.certificateId,
    );

    plc = await startModbusDevice(await freePort());
    plc.holding[0] = 7;
    gateway = await startGateway({
      thingName: id.thingName,
      mqttUrl: platform.endpoints.mqtts!,
      ca: platform.tls.caPem,
      cert: id.certPem,
      key: id.keyPem,
      mapping: parseMapping(
        JSON.stringify({
          devices: [
            {
              name: 'plc',
              protocol: 'modbus',
              host: '127.0.0.1',
              port: plc.port,
              pollIntervalMs: 200,
              tags: [{ name: 'v', table: 'holding', address: 0 }],
            },
          ],
        }),
      ),
      dataDir: dir,
      healthIntervalMs: 1000,
    });
    await waitFor(
      () => gateway!.stats().upstream.acked >= 3,
      30_000,
      'readings acknowledged under the new certificate',
    );
    const shadow = await waitFor(() => a.getShadow('gw-0042'), 30_000, 'the provisioned gateway shadow');
    expect(shadow.state.reported.health.devices.plc.state).toBe('up');
    expect(gateway.stats().upstream.refused).toEqual({});
  }, 90_000);
});
