import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingGroupCommand,
  GetRegistrationCodeCommand,
  RegisterCACertificateCommand,
  RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand,
  UpdateCACertificateCommand,
  RemoveThingFromThingGroupCommand,
  UpdateCertificateCommand,
  type IoTClient,
} from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createKeysAndCertificate } from '../../src/identity/index.js';
import type { TestPlatform } from '../helpers/platform.js';
import {
  collect,
  connectTls,
  createDevice,
  flush,
  publishReason,
  refused,
  securePlatform,
  subscribeCodes,
  waitFor,
} from './security-helpers.js';

/**
 * The security test matrix (issue 4): each row is one attack or lifecycle case, driven with MQTT.js over
 * mutual TLS against the whole platform, with certificates and policies made through @aws-sdk/client-iot.
 * Policy semantics: reference §9 (AWS IoT policy language); certificates: §3.2, §3.12.
 */

let platform: TestPlatform;
let iot: IoTClient;
let A: string;
const NOT_AUTHORIZED = 0x87;

beforeAll(async () => {
  ({ platform, iot, account: A } = await securePlatform());
});
afterAll(async () => {
  await platform?.stop();
});

const connectAny = (extra: object[] = []) => [
  { Effect: 'Allow', Action: 'iot:Connect', Resource: `${A}:client/*` },
  ...extra,
];

describe('security matrix', () => {
  it('the wildcard trap: topicfilter a/* grants a/#, so Receive is what protects a/restricted (§9.3)', async () => {
    const dev = await createDevice(iot, 'trap', {
      name: 'trap-policy',
      statements: connectAny([
        {
          Effect: 'Allow',
          Action: 'iot:Subscribe',
          Resource: [`${A}:topicfilter/a/*`, `${A}:topicfilter/lit/+`],
        },
        { Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${A}:topicfilter/a/restricted/*` },
        { Effect: 'Allow', Action: 'iot:Receive', Resource: [`${A}:topic/a/*`, `${A}:topic/lit/*`] },
        { Effect: 'Deny', Action: 'iot:Receive', Resource: `${A}:topic/a/restricted/*` },
      ]),
    });
    const c = await connectTls(platform, dev, 'trap');
    const got = collect(c);
    // + is literal in policies: only the literal filter lit/+ is granted, not lit/x or lit/#
    expect(await subscribeCodes(c, ['a/#', 'a/restricted/x', 'lit/+', 'lit/x', 'lit/#'])).toEqual([
      0,
      NOT_AUTHORIZED,
      0,
      NOT_AUTHORIZED,
      NOT_AUTHORIZED,
    ]);
    for (const t of ['a/open', 'a/restricted/secret', 'a/restricted', 'lit/1']) {
      platform.broker.publish({ topic: t, payload: Buffer.from('x'), qos: 0, retain: false });
    }
    await flush(platform, got, 'a/zz-marker');
    expect(got.sort()).toEqual(['a/open', 'a/restricted', 'a/zz-marker', 'lit/1']);
    await c.endAsync();
  });

  it.each(['+', '#', '*', 'dev/victim', 'x/y', '${iot:ClientId}', '?'])(
    'a hostile client id %j cannot widen a policy-variable match',
    async (hostile) => {
      const n = Buffer.from(hostile).toString('hex');
      const dev = await createDevice(iot, `hostile-${n}`, {
        name: `hostile-${n}`,
        statements: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: `${A}:client/\${iot:ClientId}` },
          {
            Effect: 'Allow',
            Action: ['iot:Publish', 'iot:Receive'],
            Resource: `${A}:topic/dev/\${iot:ClientId}/*`,
          },
          { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${A}:topicfilter/dev/\${iot:ClientId}/*` },
        ],
      });
      let c;
      try {
        c = await connectTls(platform, dev, hostile);
      } catch (err) {
        // Refused outright: the variable could not be substituted safely, so client/${iot:ClientId} matched nothing.
        expect((err as { code?: number }).code).toBe(NOT_AUTHORIZED);
        return;
      }
      const got = collect(c);
      expect(await publishReason(c, 'dev/victim/x')).toBe(NOT_AUTHORIZED);
      expect(await subscribeCodes(c, ['dev/#', 'dev/+/x', 'dev/victim/x'])).toEqual([
        NOT_AUTHORIZED,
        NOT_AUTHORIZED,
        NOT_AUTHORIZED,
      ]);
      platform.broker.publish({ topic: 'dev/victim/x', payload: Buffer.from('x'), qos: 0, retain: false });
      await c.endAsync();
      expect(got).toEqual([]);
    },
  );

  it("one thing reaching for another thing's topics (the thing-scoped policy of §9.6)", async () => {
    const statements = [
      {
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: `${A}:client/\${iot:Connection.Thing.ThingName}`,
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      {
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: `${A}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`,
      },
      {
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: `${A}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`,
      },
    ];
    const t1 = await createDevice(iot, 'scoped-1', { name: 'scoped', statements });
    const t2 = await createDevice(iot, 'scoped-2');
    await iot.send(new AttachPolicyCommand({ policyName: 'scoped', target: t2.certificateArn }));

    // t1's certificate cannot connect as t2 (client id must be the attached thing's name)
    expect((await refused(connectTls(platform, t1, 'scoped-2'))).code).toBe(NOT_AUTHORIZED);
    const c1 = await connectTls(platform, t1, 'scoped-1');
    const got = collect(c1);
    expect(await publishReason(c1, '$aws/things/scoped-1/shadow/update')).toBe(0);
    expect(await publishReason(c1, '$aws/things/scoped-2/shadow/update')).toBe(NOT_AUTHORIZED);
    expect(
      await subscribeCodes(c1, ['$aws/things/scoped-1/shadow/get/+', '$aws/things/scoped-2/shadow/get/+']),
    ).toEqual([0, NOT_AUTHORIZED]);
    await flush(platform, got, '$aws/things/scoped-1/shadow/get/accepted');
    await c1.endAsync();
  });

  it('a certificate registered without a CA connects over mutual TLS (RegisterCertificateWithoutCA)', async () => {
    const own = await createCa('Device Maker Without Registration');
    const device = await createKeysAndCertificate(own, { keyType: 'ec-p256', commonName: 'no-ca-1' });
    const reg = await iot.send(
      new RegisterCertificateWithoutCACommand({ certificatePem: device.certificatePem, status: 'ACTIVE' }),
    );
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'no-ca-p',
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: connectAny() }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: 'no-ca-p', target: reg.certificateArn! }));
    const creds = { certPem: device.certificatePem, keyPem: device.privateKeyPem };
    const client = await connectTls(platform, creds, 'no-ca-1');
    expect(client.connected).toBe(true);
    await client.endAsync();
    // The same DER made INACTIVE no longer connects.
    await iot.send(
      new UpdateCertificateCommand({ certificateId: reg.certificateId!, newStatus: 'INACTIVE' }),
    );
    expect((await refused(connectTls(platform, creds, 'no-ca-1'))).code).toBe(NOT_AUTHORIZED);
  });

  describe('certificates that must not connect', () => {
    it('INACTIVE', async () => {
      const dev = await createDevice(iot, 'inactive', { name: 'inactive-p', statements: connectAny() });
      await iot.send(
        new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'INACTIVE' }),
      );
      expect((await refused(connectTls(platform, dev, 'inactive'))).code).toBe(NOT_AUTHORIZED);
    });

    it('REVOKED', async () => {
      const dev = await createDevice(iot, 'revoked', { name: 'revoked-p', statements: connectAny() });
      await iot.send(
        new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }),
      );
      expect((await refused(connectTls(platform, dev, 'revoked'))).code).toBe(NOT_AUTHORIZED);
    });

    it('unregistered (signed by the platform CA but never registered)', async () => {
      const ca = { certPem: platform.tls.caPem, keyPem: platform.tls.caKeyPem! };
      const stray = await createKeysAndCertificate(ca, { keyType: 'ec-p256' });
      const r = await refused(
        connectTls(platform, { certPem: stray.certificatePem, keyPem: stray.privateKeyPem }, 'stray'),
      );
      expect(r.code).toBe(NOT_AUTHORIZED);
      // refusals are counted by reason (and logged, rate-limited)
      const metric = await platform.metrics.getSingleMetricAsString('thingstead_auth_connect_refused_total');
      for (const reason of ['inactive', 'revoked', 'unregistered'])
        expect(metric).toContain(`reason="${reason}"`);
    });

    it('from an unknown CA (refused at CONNECT, counted as unknown_ca)', async () => {
      const other = await createCa('Somebody Else');
      const foreign = await createKeysAndCertificate(other, { keyType: 'ec-p256' });
      const r = await refused(
        connectTls(platform, { certPem: foreign.certificatePem, keyPem: foreign.privateKeyPem }, 'foreign'),
      );
      expect(r.code).toBe(NOT_AUTHORIZED);
      const metric = await platform.metrics.getSingleMetricAsString('thingstead_auth_connect_refused_total');
      expect(metric).toContain('reason="unknown_ca"');
    });

    it('expired (registered and ACTIVE, but past notAfter)', async () => {
      const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ]);
      const caKey = await crypto.subtle.importKey(
        'pkcs8',
        Buffer.from(platform.tls.caKeyPem!.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['sign'],
      );
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: '0badc0de',
        subject: 'CN=expired',
        issuer: new x509.X509Certificate(platform.tls.caPem).subject,
        notBefore: new Date(Date.now() - 10 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        publicKey: keys.publicKey,
        signingKey: caKey,
      });
      const certPem = cert.toString('pem');
      await platform.security.certificates.register({ certificatePem: certPem, setAsActive: true });
      const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
      const keyPem = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
      await refused(connectTls(platform, { certPem, keyPem }, 'expired'));
    });
  });

  it('revocation mid-session disconnects within a second', async () => {
    const dev = await createDevice(iot, 'live', { name: 'live-p', statements: connectAny() });
    const c = await connectTls(platform, dev, 'live');
    let closedAt = 0;
    c.on('close', () => (closedAt ||= Date.now()));
    const t0 = Date.now();
    await iot.send(new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }));
    await waitFor(() => closedAt, 1000, 'disconnect after revocation');
    expect(closedAt - t0).toBeLessThan(1000);
    await c.endAsync(true);
  });

  it('a policy change mid-session takes effect live: receive stops, then the connection is closed', async () => {
    const base = [
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: `${A}:topicfilter/news/*` },
      { Effect: 'Allow', Action: ['iot:Receive'], Resource: `${A}:topic/news/*` },
    ];
    const dev = await createDevice(iot, 'changing', { name: 'changing-p', statements: connectAny(base) });
    const c = await connectTls(platform, dev, 'changing');
    const got = collect(c);
    expect(await subscribeCodes(c, ['news/#'])).toEqual([0]);
    await flush(platform, got, 'news/1');
    // v2: Receive of news/sports denied
    await iot.send(
      new CreatePolicyVersionCommand({
        policyName: 'changing-p',
        setAsDefault: true,
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: connectAny([
            ...base,
            { Effect: 'Deny', Action: 'iot:Receive', Resource: `${A}:topic/news/sports` },
          ]),
        }),
      }),
    );
    platform.broker.publish({ topic: 'news/sports', payload: Buffer.from('x'), qos: 0, retain: false });
    await flush(platform, got, 'news/2');
    expect(got).toEqual(['news/1', 'news/2']);
    // v3: no iot:Connect at all: the live connection is closed
    let closed = false;
    c.on('close', () => (closed = true));
    await iot.send(
      new CreatePolicyVersionCommand({
        policyName: 'changing-p',
        setAsDefault: true,
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: base }),
      }),
    );
    await waitFor(() => closed, 1000, 'disconnect after losing iot:Connect');
    await c.endAsync(true);
  });

  it("thing-group policy inheritance: a parent group's policy applies to things in child groups", async () => {
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'fleet' }));
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'fleet-eu', parentGroupName: 'fleet' }));
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'fleet-p',
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/fleet/*` }],
        }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: 'fleet-p', target: `${A}:thinggroup/fleet` }));
    const dev = await createDevice(iot, 'member', { name: 'member-p', statements: connectAny() });
    const c = await connectTls(platform, dev, 'member');
    expect(await publishReason(c, 'fleet/telemetry')).toBe(NOT_AUTHORIZED);
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'fleet-eu', thingName: 'member' }));
    await waitFor(
      async () => (await publishReason(c, 'fleet/telemetry')) === 0,
      3000,
      'group policy to apply',
    );
    await iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: 'fleet-eu', thingName: 'member' }));
    await waitFor(
      async () => (await publishReason(c, 'fleet/telemetry')) === NOT_AUTHORIZED,
      3000,
      'group policy to lapse',
    );
    await c.endAsync();
  });

  it('explicit deny beats allow, across policies', async () => {
    const dev = await createDevice(iot, 'denied', {
      name: 'allow-all',
      statements: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
    });
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'deny-secret',
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Deny', Action: ['iot:Publish', 'iot:RetainPublish'], Resource: `${A}:topic/secret/*` },
          ],
        }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: 'deny-secret', target: dev.certificateArn }));
    const c = await connectTls(platform, dev, 'denied');
    expect(await publishReason(c, 'open/x')).toBe(0);
    expect(await publishReason(c, 'secret/x')).toBe(NOT_AUTHORIZED);
    await c.endAsync();
  });

  it('retain needs iot:RetainPublish as well as iot:Publish', async () => {
    const dev = await createDevice(iot, 'retainer', {
      name: 'no-retain',
      statements: connectAny([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/r/*` }]),
    });
    const c = await connectTls(platform, dev, 'retainer');
    expect(await publishReason(c, 'r/1')).toBe(0);
    expect(await publishReason(c, 'r/1', true)).toBe(NOT_AUTHORIZED);
    expect(platform.broker.retained('r/1')).toBeUndefined();
    await c.endAsync();
  });

  it('bring-your-own CA over mutual TLS: registered CA trusted live; deactivating it drops its devices', async () => {
    const acme = await createCa('Acme Devices CA');
    const { registrationCode } = await iot.send(new GetRegistrationCodeCommand({}));
    const verification = await createKeysAndCertificate(acme, {
      keyType: 'ec-p256',
      commonName: registrationCode!,
    });
    const ca = await iot.send(
      new RegisterCACertificateCommand({
        caCertificate: acme.certPem,
        verificationCertificate: verification.certificatePem,
        setAsActive: true,
      }),
    );
    const device = await createKeysAndCertificate(acme, { keyType: 'ec-p256', commonName: 'acme-1' });
    const reg = await iot.send(
      new RegisterCertificateCommand({ certificatePem: device.certificatePem, setAsActive: true }),
    );
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'acme-p',
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: connectAny() }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: 'acme-p', target: reg.certificateArn }));
    const creds = { certPem: device.certificatePem, keyPem: device.privateKeyPem };
    // The TLS trust list is refreshed asynchronously after registration.
    const c = await waitFor(
      () => connectTls(platform, creds, 'acme-1').catch(() => undefined),
      3000,
      'a device of the registered CA to connect',
    );
    let closed = false;
    c.on('close', () => (closed = true));
    await iot.send(
      new UpdateCACertificateCommand({ certificateId: ca.certificateId, newStatus: 'INACTIVE' }),
    );
    await waitFor(() => closed, 1000, 'devices of the deactivated CA to be disconnected');
    await c.endAsync(true);
    await refused(connectTls(platform, creds, 'acme-1'));
  });

  it('just-in-time registration: an unknown device of an auto-registration CA is registered PENDING_ACTIVATION', async () => {
    const jit = await createCa('JIT CA');
    const { registrationCode } = await iot.send(new GetRegistrationCodeCommand({}));
    const verification = await createKeysAndCertificate(jit, {
      keyType: 'ec-p256',
      commonName: registrationCode!,
    });
    const ca = await iot.send(
      new RegisterCACertificateCommand({
        caCertificate: jit.certPem,
        verificationCertificate: verification.certificatePem,
        setAsActive: true,
        allowAutoRegistration: true,
      }),
    );
    const events: Array<{ topic: string; payload: Record<string, unknown> }> = [];
    platform.broker.subscribeInternal('$aws/events/certificates/registered/+', (m) =>
      events.push({ topic: m.topic, payload: JSON.parse(m.payload.toString()) as Record<string, unknown> }),
    );
    const device = await createKeysAndCertificate(jit, { keyType: 'ec-p256', commonName: 'jit-1' });
    const creds = { certPem: device.certificatePem, keyPem: device.privateKeyPem };
    // Refused (not yet ACTIVE) once the TLS trust list has picked up the CA; the first attempt registers it.
    await waitFor(
      async () => {
        if (events.length === 0) await refused(connectTls(platform, creds, 'jit-1'));
        return events.length > 0;
      },
      3000,
      'JITR event',
    );
    expect(events[0]).toMatchObject({
      topic: `$aws/events/certificates/registered/${ca.certificateId}`,
      payload: {
        certificateId: device.certificateId,
        caCertificateId: ca.certificateId,
        certificateStatus: 'PENDING_ACTIVATION',
      },
    });
    await iot.send(
      new UpdateCertificateCommand({ certificateId: device.certificateId, newStatus: 'ACTIVE' }),
    );
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'jit-p',
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: connectAny() }),
      }),
    );
    await iot.send(
      new AttachPolicyCommand({ policyName: 'jit-p', target: `${A}:cert/${device.certificateId}` }),
    );
    const c = await connectTls(platform, creds, 'jit-1');
    await c.endAsync();
  });
});
