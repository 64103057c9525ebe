import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CreateProvisioningClaimCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListThingPrincipalsCommand,
} from '@aws-sdk/client-iot';
import { iot, iotidentity, mqtt as crt } from 'aws-iot-device-sdk-v2';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { waitFor } from '../helpers/platform.js';
import {
  devicePolicy,
  fleetTemplate,
  makeCsr,
  provisioningPlatform,
  subackCode,
  type ProvisioningHarness,
} from './provisioning-helpers.js';

/**
 * Fleet provisioning by claim (issue 12; reference §8.4) with the AWS IoT Device SDK v2 for JavaScript:
 * a trusted user's CreateProvisioningClaim gives a short-lived claim certificate whose policy allows only
 * the provisioning topics; the SDK's IotIdentityClientv2 (JSON topics) runs CreateKeysAndCertificate and
 * CreateCertificateFromCsr then RegisterThing; the same SDK connection runs both over the CBOR topics (the
 * SDK's identity client speaks JSON only); each new certificate then connects and may do exactly what the
 * template's policy allows.
 */
let h: ProvisioningHarness;
let claim: { certificatePem: string; privateKey: string; certificateId: string };

beforeAll(async () => {
  h = await provisioningPlatform();
  const { region, accountId } = h.platform.config;
  await h.policy('device-policy', devicePolicy(region, accountId));
  await h.template('fleet', fleetTemplate('device-policy'));
  const c = await h.iot.send(new CreateProvisioningClaimCommand({ templateName: 'fleet' }));
  expect(c.expiration!.getTime()).toBeGreaterThan(Date.now() + 4 * 60_000);
  expect(c.expiration!.getTime()).toBeLessThanOrEqual(Date.now() + 5 * 60_000 + 2000);
  claim = {
    certificatePem: c.certificatePem!,
    privateKey: c.keyPair!.PrivateKey!,
    certificateId: c.certificateId!,
  };
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
});

async function claimConnection(clientId: string) {
  const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(
    claim.certificatePem,
    claim.privateKey,
  )
    .with_certificate_authority(h.platform.tls.caPem)
    .with_endpoint('localhost')
    .with_port(h.platform.endpoints.mqttsPort!)
    .with_client_id(clientId)
    .with_clean_session(true)
    .build();
  const connection = new crt.MqttClient().new_connection(config);
  await connection.connect();
  return connection;
}

/** The new device certificate connects and may do what the template's policy allows, and nothing else. */
async function checkDevice(cert: string, key: string, thingName: string) {
  const described = await h.iot.send(new DescribeThingCommand({ thingName }));
  expect(described.attributes?.serial).toBe(thingName.replace(/^dev-/, ''));
  const principals = await h.iot.send(new ListThingPrincipalsCommand({ thingName }));
  expect(principals.principals).toHaveLength(1);
  const device = await h.device(cert, key, thingName);
  try {
    expect(await subackCode(device, `telemetry/${thingName}`)).toBe(1);
    expect(await subackCode(device, 'telemetry/someone-else')).toBe(128);
    const got: string[] = [];
    device.on('message', (topic) => got.push(topic));
    await device.publishAsync(`telemetry/${thingName}`, 'hello', { qos: 1 });
    await waitFor(() => got.includes(`telemetry/${thingName}`), 10_000, 'own telemetry echoed');
  } finally {
    await device.endAsync();
  }
  // A client id other than the thing's is refused (iot:Connect on client/${iot:Connection.Thing.ThingName}).
  await expect(h.device(cert, key, 'not-the-thing')).rejects.toThrow();
}

test('Device SDK v2 iotidentity (JSON): CreateKeysAndCertificate and CreateCertificateFromCsr, then RegisterThing', async () => {
  const connection = await claimConnection('claim-json');
  const identity = iotidentity.IotIdentityClientv2.newFromMqtt311(connection, {
    maxRequestResponseSubscriptions: 6,
    maxStreamingSubscriptions: 2,
    operationTimeoutInSeconds: 20,
  });
  try {
    // CreateKeysAndCertificate
    const keys = await identity.createKeysAndCertificate({});
    expect(keys.certificateId).toMatch(/^[0-9a-f]{64}$/);
    expect(keys.privateKey).toContain('PRIVATE KEY');
    const pending = await h.iot.send(new DescribeCertificateCommand({ certificateId: keys.certificateId }));
    expect(pending.certificateDescription?.status).toBe('PENDING_ACTIVATION');
    const registered = await identity.registerThing({
      templateName: 'fleet',
      certificateOwnershipToken: keys.certificateOwnershipToken!,
      parameters: { SerialNumber: 'J1' },
    });
    expect(registered).toEqual({ thingName: 'dev-J1', deviceConfiguration: { telemetryTopic: 'telemetry' } });
    const active = await h.iot.send(new DescribeCertificateCommand({ certificateId: keys.certificateId }));
    expect(active.certificateDescription?.status).toBe('ACTIVE');
    await checkDevice(keys.certificatePem!, keys.privateKey!, 'dev-J1');

    // CreateCertificateFromCsr: the device keeps its key
    const { csr, key } = await makeCsr('J2');
    const fromCsr = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
    expect(fromCsr.certificatePem).toContain('BEGIN CERTIFICATE');
    const r2 = await identity.registerThing({
      templateName: 'fleet',
      certificateOwnershipToken: fromCsr.certificateOwnershipToken!,
      parameters: { SerialNumber: 'J2' },
    });
    expect(r2.thingName).toBe('dev-J2');
    await checkDevice(fromCsr.certificatePem!, key, 'dev-J2');

    // A reused token is refused with AWS's rejected payload.
    const again = await identity
      .registerThing({
        templateName: 'fleet',
        certificateOwnershipToken: fromCsr.certificateOwnershipToken!,
        parameters: { SerialNumber: 'J2' },
      })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(again).not.toBeNull();
    expect(JSON.stringify(again)).toContain('InvalidCertificateOwnershipToken');
  } finally {
    identity.close();
    await connection.disconnect();
  }
}, 120_000);

test('the same over the CBOR topics, on the SDK connection', async () => {
  const connection = await claimConnection('claim-cbor');
  const got = new Map<string, Record<string, unknown>>();
  const on = async (topic: string) => {
    await connection.subscribe(topic, crt.QoS.AtLeastOnce, (t, payload) => {
      got.set(t, cborDecode(new Uint8Array(payload)) as Record<string, unknown>);
    });
  };
  const request = async (topic: string, body: Record<string, unknown>) => {
    got.delete(`${topic}/accepted`);
    got.delete(`${topic}/rejected`);
    await connection.publish(topic, cborEncode(body), crt.QoS.AtLeastOnce);
    return waitFor(
      () => got.get(`${topic}/accepted`) ?? got.get(`${topic}/rejected`),
      20_000,
      `answer on ${topic}`,
    );
  };
  try {
    for (const op of ['create', 'create-from-csr'])
      for (const s of ['accepted', 'rejected']) await on(`$aws/certificates/${op}/cbor/${s}`);
    for (const s of ['accepted', 'rejected'])
      await on(`$aws/provisioning-templates/fleet/provision/cbor/${s}`);

    const keys = await request('$aws/certificates/create/cbor', {});
    expect(Object.keys(keys).sort()).toEqual([
      'certificateId',
      'certificateOwnershipToken',
      'certificatePem',
      'privateKey',
    ]);
    const r1 = await request('$aws/provisioning-templates/fleet/provision/cbor', {
      certificateOwnershipToken: keys.certificateOwnershipToken,
      parameters: { SerialNumber: 'C1' },
    });
    expect(r1).toEqual({ thingName: 'dev-C1', deviceConfiguration: { telemetryTopic: 'telemetry' } });
    await checkDevice(keys.certificatePem as string, keys.privateKey as string, 'dev-C1');

    const { csr, key } = await makeCsr('C2');
    const fromCsr = await request('$aws/certificates/create-from-csr/cbor', {
      certificateSigningRequest: csr,
    });
    expect(fromCsr.privateKey).toBeUndefined();
    const r2 = await request('$aws/provisioning-templates/fleet/provision/cbor', {
      certificateOwnershipToken: fromCsr.certificateOwnershipToken,
      parameters: { SerialNumber: 'C2' },
    });
    expect(r2.thingName).toBe('dev-C2');
    await checkDevice(fromCsr.certificatePem as string, key, 'dev-C2');

    // A forged CSR (its signature does not match its key) is refused. A byte inside the signature is
    // flipped in the DER (changing the last base64 character may touch only padding bits).
    const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff;
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const bad = await request('$aws/certificates/create-from-csr/cbor', {
      certificateSigningRequest: forged,
    });
    expect(bad).toMatchObject({ statusCode: 400 });
    expect(typeof bad.errorCode).toBe('string');
    expect(typeof bad.errorMessage).toBe('string');
  } finally {
    await connection.disconnect();
  }
}, 120_000);

test('the claim certificate may use the provisioning topics and nothing else', async () => {
  const device = await h.device(claim.certificatePem, claim.privateKey, 'claim-probe');
  try {
    expect(await subackCode(device, '$aws/certificates/create/json/accepted')).toBe(1);
    expect(await subackCode(device, 'telemetry/dev-J1')).toBe(128);
    expect(await subackCode(device, '$aws/provisioning-templates/other/provision/json/accepted')).toBe(128);
  } finally {
    await device.endAsync();
  }
}, 30_000);
