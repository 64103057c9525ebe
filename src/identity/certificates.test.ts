import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalChannel } from '../events/index.js';
import { openDatabase, type Database } from '../store/index.js';
import { createCa, type PemPair } from './pki.js';
import { certificateIdOf, certificateInfo, createKeysAndCertificate, signCsr } from './certificates.js';
import { openCertificateService, type CertificateService } from './certificates-service.js';

const scope = { region: 'us-east-1', accountId: '123456789012' };

async function csrFor(commonName: string): Promise<{ csrPem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}, O=Acme, OU=a, OU=b`,
    keys,
    signingAlgorithm: alg,
  });
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    csrPem: csr.toString('pem'),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`,
  };
}

describe('certificate crypto', () => {
  let ca: PemPair;
  beforeAll(async () => {
    ca = await createCa('Test Platform CA');
  });

  it.each(['rsa-2048', 'ec-p256'] as const)(
    'issues %s keys and a certificate chained to the CA; id = sha256(DER)',
    async (keyType) => {
      const issued = await createKeysAndCertificate(ca, { keyType });
      const cert = new X509Certificate(issued.certificatePem);
      expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
      expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
      expect(issued.certificateId).toBe(createHash('sha256').update(cert.raw).digest('hex'));
      expect(issued.certificateId).toMatch(/^[0-9a-f]{64}$/);
      // the key pair matches the certificate
      expect(
        createPublicKey(createPrivateKey(issued.privateKeyPem)).export({ type: 'spki', format: 'pem' }),
      ).toBe(cert.publicKey.export({ type: 'spki', format: 'pem' }));
      expect(cert.publicKey.asymmetricKeyType).toBe(keyType === 'rsa-2048' ? 'rsa' : 'ec');
      if (keyType === 'rsa-2048') expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    },
  );

  it('signs a CSR, keeping its subject; refuses forged and malformed CSRs', async () => {
    const { csrPem } = await csrFor('dev-1');
    const issued = await signCsr(ca, csrPem);
    const info = certificateInfo(issued.certificatePem);
    expect(info.subject.CommonName).toEqual(['dev-1']);
    expect(info.subject.OrganizationalUnit).toEqual(['a', 'b']);
    expect(info.issuer.CommonName).toEqual(['Test Platform CA']);
    await expect(signCsr(ca, 'not a csr')).rejects.toMatchObject({ name: 'InvalidRequestException' });
    // flip a byte inside the signature: verification must fail
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff;
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(signCsr(ca, forged)).rejects.toMatchObject({ name: 'InvalidRequestException' });
  });
});

async function pgUrl(): Promise<string | null> {
  const base = process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: base });
  try {
    await client.connect();
  } catch {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL not reachable at ${base}`);
    console.warn(`SKIP PostgreSQL contract tests: ${base} not reachable`);
    return null;
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  return `${base}${base.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

const engines: Array<[string, () => Promise<Database | null>]> = [
  ['sqlite', () => openDatabase({ dataDir: tmpdir(), databaseUrl: null, file: ':memory:' })],
  [
    'postgres',
    async () => {
      const url = await pgUrl();
      return url ? openDatabase({ dataDir: tmpdir(), databaseUrl: url }) : null;
    },
  ],
];

describe.each(engines)('certificate service contract on %s (reference §3.2, §3.12)', (_name, open) => {
  let db: Database | null;
  let ca: PemPair;
  let svc: CertificateService;
  const changes: unknown[] = [];
  // What DeleteCertificate asks the registry and policy contexts (set by the test that needs them).
  let things: string[] = [];
  let policies: string[] = [];
  beforeAll(async () => {
    db = await open();
    if (!db) return;
    ca = await createCa('Platform CA');
    const events = createLocalChannel();
    events.subscribe(['certificate', 'ca'], (c) => void changes.push(c));
    svc = await openCertificateService({
      db,
      ca,
      scope,
      events,
      attachments: {
        thingsOf: async () => things,
        policiesOf: async () => policies,
        detachAllPolicies: async () => {
          policies = [];
        },
      },
    });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('CreateKeysAndCertificate: INACTIVE unless setAsActive, described by id', async (ctx) => {
    if (!db) return ctx.skip();
    const a = await svc.createKeysAndCertificate({ setAsActive: true, keyType: 'ec-p256' });
    const b = await svc.createKeysAndCertificate({});
    expect(a.status).toBe('ACTIVE');
    expect(b.status).toBe('INACTIVE');
    expect(a.caCertificateId).toBe(svc.platformCaId);
    const d = await svc.describe(a.certificateId);
    expect(d.certificatePem).toBe(a.certificatePem);
    expect(svc.certificateArn(a.certificateId)).toBe(
      `arn:aws:iot:us-east-1:123456789012:cert/${a.certificateId}`,
    );
    expect(svc.idFromArn(svc.certificateArn(a.certificateId))).toBe(a.certificateId);
    await expect(svc.describe('0'.repeat(64))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(svc.describe('abc')).rejects.toMatchObject({ name: 'InvalidRequestException' });
    expect((await svc.check(new X509Certificate(a.certificatePem))).ok).toBe(true);
    expect(await svc.check(new X509Certificate(b.certificatePem))).toMatchObject({
      ok: false,
      reason: 'inactive',
    });
  });

  it('statuses: idempotent updates, revocation is final, changes are announced', async (ctx) => {
    if (!db) return ctx.skip();
    const c = await svc.createKeysAndCertificate({ setAsActive: true, keyType: 'ec-p256' });
    changes.length = 0;
    await svc.updateStatus(c.certificateId, 'INACTIVE');
    await svc.updateStatus(c.certificateId, 'INACTIVE');
    expect(changes).toEqual([{ kind: 'certificate', certificateId: c.certificateId, status: 'INACTIVE' }]);
    await svc.updateStatus(c.certificateId, 'REVOKED');
    expect(await svc.check(new X509Certificate(c.certificatePem))).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
    await expect(svc.updateStatus(c.certificateId, 'ACTIVE')).rejects.toMatchObject({
      name: 'CertificateStateException',
    });
    await expect(svc.updateStatus(c.certificateId, 'BOGUS')).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
  });

  it('DeleteCertificate: refused while ACTIVE (406) or attached (409)', async (ctx) => {
    if (!db) return ctx.skip();
    const c = await svc.createKeysAndCertificate({ setAsActive: true, keyType: 'ec-p256' });
    await expect(svc.delete(c.certificateId)).rejects.toMatchObject({ name: 'CertificateStateException' });
    await svc.updateStatus(c.certificateId, 'INACTIVE');
    things = ['t1'];
    policies = ['p1'];
    await expect(svc.delete(c.certificateId)).rejects.toMatchObject({ name: 'DeleteConflictException' });
    things = [];
    await expect(svc.delete(c.certificateId)).rejects.toMatchObject({ name: 'DeleteConflictException' });
    await svc.delete(c.certificateId, { forceDelete: true });
    expect(policies).toEqual([]);
    await expect(svc.describe(c.certificateId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('lists with markers, newest first unless ascending', async (ctx) => {
    if (!db) return ctx.skip();
    const seen = new Set<string>();
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await svc.list({ pageSize: 2, marker });
      page.items.forEach((i) => seen.add(i.certificateId));
      marker = page.nextMarker;
      pages++;
    } while (marker);
    expect(pages).toBeGreaterThan(1);
    const all = await svc.list({ ascending: true });
    expect(seen.size).toBe(all.items.length);
    const desc = await svc.list({});
    expect(desc.items[0]!.createdAt).toBeGreaterThanOrEqual(desc.items[desc.items.length - 1]!.createdAt);
  });

  it('bring-your-own CA: registration code proof, RegisterCertificate, ListCertificatesByCA, CA status', async (ctx) => {
    if (!db) return ctx.skip();
    const byo = await createCa('Acme Devices CA');
    const code = await svc.getRegistrationCode();
    expect(await svc.getRegistrationCode()).toBe(code);
    // wrong common name, then a verification certificate from another CA
    const wrongCn = await createKeysAndCertificate(byo, { keyType: 'ec-p256', commonName: 'not-the-code' });
    await expect(
      svc.registerCa({ caCertificate: byo.certPem, verificationCertificate: wrongCn.certificatePem }),
    ).rejects.toMatchObject({ name: 'CertificateValidationException' });
    const other = await createCa('Other');
    const otherSigned = await createKeysAndCertificate(other, { keyType: 'ec-p256', commonName: code });
    await expect(
      svc.registerCa({ caCertificate: byo.certPem, verificationCertificate: otherSigned.certificatePem }),
    ).rejects.toMatchObject({ name: 'CertificateValidationException' });
    const verification = await createKeysAndCertificate(byo, { keyType: 'ec-p256', commonName: code });
    const caRec = await svc.registerCa({
      caCertificate: byo.certPem,
      verificationCertificate: verification.certificatePem,
      setAsActive: true,
    });
    expect(caRec.certificateId).toBe(certificateIdOf(byo.certPem));
    await expect(
      svc.registerCa({ caCertificate: byo.certPem, verificationCertificate: verification.certificatePem }),
    ).rejects.toMatchObject({ name: 'ResourceAlreadyExistsException' });
    expect(await svc.trustedCaPems()).toHaveLength(2);

    // a device certificate made by the customer's CA
    const device = await createKeysAndCertificate(byo, { keyType: 'ec-p256', commonName: 'dev-9' });
    const unknown = await svc.check(new X509Certificate(device.certificatePem));
    expect(unknown).toMatchObject({ ok: false, reason: 'unregistered' });
    const reg = await svc.register({ certificatePem: device.certificatePem, setAsActive: true });
    expect(reg.caCertificateId).toBe(caRec.certificateId);
    await expect(svc.register({ certificatePem: device.certificatePem })).rejects.toMatchObject({
      name: 'ResourceAlreadyExistsException',
    });
    const byCa = await svc.list({ caCertificateId: caRec.certificateId });
    expect(byCa.items.map((i) => i.certificateId)).toEqual([reg.certificateId]);
    expect((await svc.check(new X509Certificate(device.certificatePem))).ok).toBe(true);

    // a certificate of an unregistered CA cannot be registered with a CA, only without
    const stray = await createKeysAndCertificate(other, { keyType: 'ec-p256' });
    await expect(svc.register({ certificatePem: stray.certificatePem })).rejects.toMatchObject({
      name: 'CertificateValidationException',
    });
    await expect(
      svc.register({ certificatePem: stray.certificatePem, caCertificatePem: byo.certPem }),
    ).rejects.toMatchObject({ name: 'CertificateValidationException' });
    expect(await svc.check(new X509Certificate(stray.certificatePem))).toMatchObject({
      ok: false,
      reason: 'unknown_ca',
    });
    const noCa = await svc.registerWithoutCa({ certificatePem: stray.certificatePem, status: 'ACTIVE' });
    expect(noCa.mode).toBe('SNI_ONLY');
    expect(noCa.caCertificateId).toBeNull();

    // CA made INACTIVE: its certificates may no longer connect, and it leaves the TLS trust list
    await svc.updateCa(caRec.certificateId, { newStatus: 'INACTIVE' });
    expect(await svc.check(new X509Certificate(device.certificatePem))).toMatchObject({
      ok: false,
      reason: 'ca_inactive',
    });
    expect(await svc.trustedCaPems()).toHaveLength(1);
    await expect(svc.deleteCa(caRec.certificateId)).rejects.toMatchObject({
      name: 'DeleteConflictException',
    });
    await svc.updateStatus(reg.certificateId, 'INACTIVE');
    await svc.delete(reg.certificateId);
    await svc.deleteCa(caRec.certificateId);
    await expect(svc.describeCa(caRec.certificateId)).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('auto-registration CA: an unknown device certificate is registered PENDING_ACTIVATION', async (ctx) => {
    if (!db) return ctx.skip();
    const byo = await createCa('Auto CA');
    const code = await svc.getRegistrationCode();
    const verification = await createKeysAndCertificate(byo, { keyType: 'ec-p256', commonName: code });
    await svc.registerCa({
      caCertificate: byo.certPem,
      verificationCertificate: verification.certificatePem,
      setAsActive: true,
      allowAutoRegistration: true,
    });
    const device = await createKeysAndCertificate(byo, { keyType: 'ec-p256' });
    expect(await svc.check(new X509Certificate(device.certificatePem))).toMatchObject({
      reason: 'pending_activation',
    });
    expect((await svc.describe(device.certificateId)).status).toBe('PENDING_ACTIVATION');
  });

  it('expired certificates are refused', async (ctx) => {
    if (!db) return ctx.skip();
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const caKey = await crypto.subtle.importKey(
      'pkcs8',
      Buffer.from(ca.keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    const expired = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: 'CN=old',
      issuer: new x509.X509Certificate(ca.certPem).subject,
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: keys.publicKey,
      signingKey: caKey,
    });
    const rec = await svc.register({ certificatePem: expired.toString('pem'), setAsActive: true });
    expect(rec.status).toBe('ACTIVE');
    expect(await svc.check(new X509Certificate(expired.toString('pem')))).toMatchObject({
      ok: false,
      reason: 'expired',
    });
  });
});
