import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CertificateStateException,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  AddThingToThingGroupCommand,
  DeleteCertificateCommand,
  DeleteConflictException,
  DeleteThingGroupCommand,
  RemoveThingFromThingGroupCommand,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetEffectivePoliciesCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  InvalidRequestException,
  ListAttachedPoliciesCommand,
  ListCertificatesByCACommand,
  ListCertificatesCommand,
  ListPoliciesCommand,
  ListPolicyVersionsCommand,
  ListTargetsForPolicyCommand,
  MalformedPolicyException,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  SetDefaultPolicyVersionCommand,
  TestAuthorizationCommand,
  UpdateCertificateCommand,
  VersionsLimitExceededException,
  paginateListCertificates,
  type IoTClient,
} from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPlatform } from '../helpers/platform.js';
import { securePlatform } from './security-helpers.js';

/**
 * Certificate and policy operations through @aws-sdk/client-iot (maxAttempts 1): wire shapes (epoch-second
 * timestamps, nextMarker pagination, PascalCase KeyPair), and AWS's errors and status codes
 * (reference §3.2, §3.3, §3.12, §6.2).
 */

let platform: TestPlatform;
let iot: IoTClient;
let A: string;
beforeAll(async () => {
  ({ platform, iot, account: A } = await securePlatform());
});
afterAll(async () => {
  await platform?.stop();
});

const doc = (resource: string, effect = 'Allow', action = 'iot:Publish') =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: effect, Action: action, Resource: resource }],
  });

describe('certificate operations', () => {
  it('CreateKeysAndCertificate, DescribeCertificate (epoch timestamps, validity), UpdateCertificate', async () => {
    const c = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: false }));
    expect(c.certificateId).toMatch(/^[0-9a-f]{64}$/);
    expect(c.certificateArn).toBe(`${A}:cert/${c.certificateId}`);
    expect(c.keyPair?.PrivateKey).toMatch(/BEGIN RSA PRIVATE KEY/);
    expect(c.keyPair?.PublicKey).toMatch(/BEGIN PUBLIC KEY/);
    const d = (await iot.send(new DescribeCertificateCommand({ certificateId: c.certificateId })))
      .certificateDescription!;
    expect(d.status).toBe('INACTIVE');
    expect(d.creationDate).toBeInstanceOf(Date);
    expect(Math.abs(d.creationDate!.getTime() - Date.now())).toBeLessThan(60_000);
    expect(d.validity?.notAfter?.getUTCFullYear()).toBe(2049);
    expect(d.certificatePem).toBe(c.certificatePem);
    await iot.send(new UpdateCertificateCommand({ certificateId: c.certificateId, newStatus: 'ACTIVE' }));
    await iot.send(new UpdateCertificateCommand({ certificateId: c.certificateId, newStatus: 'ACTIVE' })); // idempotent
    const ca = await iot.send(new DescribeCACertificateCommand({ certificateId: d.caCertificateId }));
    expect(ca.certificateDescription?.certificatePem).toContain('BEGIN CERTIFICATE');
    const byCa = await iot.send(new ListCertificatesByCACommand({ caCertificateId: d.caCertificateId }));
    expect(byCa.certificates?.map((x) => x.certificateId)).toContain(c.certificateId);
    await expect(
      iot.send(new DescribeCertificateCommand({ certificateId: 'f'.repeat(64) })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('CreateCertificateFromCsr keeps the CSR subject', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=csr-dev',
      keys,
      signingAlgorithm: alg,
    });
    const c = await iot.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: csr.toString('pem'),
        setAsActive: true,
      }),
    );
    expect(new x509.X509Certificate(c.certificatePem!).subject).toBe('CN=csr-dev');
    await expect(
      iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: 'garbage' })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
  });

  it('DeleteCertificate: 406 while ACTIVE, 409 while attached, then deleted', async () => {
    const c = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    const err = await iot
      .send(new DeleteCertificateCommand({ certificateId: c.certificateId }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertificateStateException);
    expect((err as CertificateStateException).$metadata.httpStatusCode).toBe(406);
    await iot.send(new UpdateCertificateCommand({ certificateId: c.certificateId, newStatus: 'INACTIVE' }));
    await iot.send(new CreateThingCommand({ thingName: 'del-thing' }));
    await iot.send(new AttachThingPrincipalCommand({ thingName: 'del-thing', principal: c.certificateArn }));
    await expect(
      iot.send(new DeleteCertificateCommand({ certificateId: c.certificateId })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    await iot.send(new DetachThingPrincipalCommand({ thingName: 'del-thing', principal: c.certificateArn }));
    await iot.send(new CreatePolicyCommand({ policyName: 'del-p', policyDocument: doc('*') }));
    await iot.send(new AttachPolicyCommand({ policyName: 'del-p', target: c.certificateArn }));
    await expect(
      iot.send(new DeleteCertificateCommand({ certificateId: c.certificateId })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    await iot.send(new DeleteCertificateCommand({ certificateId: c.certificateId, forceDelete: true }));
    await expect(
      iot.send(new DescribeCertificateCommand({ certificateId: c.certificateId })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('ListCertificates pages with nextMarker', async () => {
    for (let i = 0; i < 3; i++) await iot.send(new CreateKeysAndCertificateCommand({}));
    const ids: string[] = [];
    let pages = 0;
    for await (const page of paginateListCertificates({ client: iot, pageSize: 2 }, {})) {
      pages++;
      ids.push(...(page.certificates ?? []).map((c) => c.certificateId!));
    }
    expect(pages).toBeGreaterThan(1);
    expect(new Set(ids).size).toBe(ids.length);
    const all = await iot.send(new ListCertificatesCommand({ pageSize: 250 }));
    expect(all.certificates?.length).toBe(ids.length);
    expect(all.nextMarker).toBeUndefined();
  });
});

describe('policy operations', () => {
  it('CreatePolicy, GetPolicy, versions (max 5), SetDefault, DeleteVersion, DeletePolicy', async () => {
    const p = await iot.send(
      new CreatePolicyCommand({ policyName: 'api-p', policyDocument: doc(`${A}:topic/v1`) }),
    );
    expect(p).toMatchObject({ policyName: 'api-p', policyArn: `${A}:policy/api-p`, policyVersionId: '1' });
    await expect(
      iot.send(new CreatePolicyCommand({ policyName: 'api-p', policyDocument: doc('*') })),
    ).rejects.toBeInstanceOf(ResourceAlreadyExistsException);
    const bad = await iot
      .send(
        new CreatePolicyCommand({
          policyName: 'bad',
          policyDocument: '{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"x"}]}',
        }),
      )
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(MalformedPolicyException);
    expect((bad as Error).message).toMatch(/^Statement\[0\]\.Resource/);
    for (let v = 2; v <= 5; v++) {
      await iot.send(
        new CreatePolicyVersionCommand({ policyName: 'api-p', policyDocument: doc(`${A}:topic/v${v}`) }),
      );
    }
    await expect(
      iot.send(new CreatePolicyVersionCommand({ policyName: 'api-p', policyDocument: doc('*') })),
    ).rejects.toBeInstanceOf(VersionsLimitExceededException);
    await iot.send(new SetDefaultPolicyVersionCommand({ policyName: 'api-p', policyVersionId: '4' }));
    const g = await iot.send(new GetPolicyCommand({ policyName: 'api-p' }));
    expect(g.defaultVersionId).toBe('4');
    expect(g.creationDate).toBeInstanceOf(Date);
    const v = await iot.send(new GetPolicyVersionCommand({ policyName: 'api-p', policyVersionId: '2' }));
    expect(v).toMatchObject({ isDefaultVersion: false, policyVersionId: '2' });
    const list = await iot.send(new ListPolicyVersionsCommand({ policyName: 'api-p' }));
    expect(list.policyVersions?.filter((x) => x.isDefaultVersion).map((x) => x.versionId)).toEqual(['4']);
    await expect(
      iot.send(new DeletePolicyVersionCommand({ policyName: 'api-p', policyVersionId: '4' })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    await expect(iot.send(new DeletePolicyCommand({ policyName: 'api-p' }))).rejects.toBeInstanceOf(
      DeleteConflictException,
    );
    for (const id of ['1', '2', '3', '5']) {
      await iot.send(new DeletePolicyVersionCommand({ policyName: 'api-p', policyVersionId: id }));
    }
    await iot.send(new DeletePolicyCommand({ policyName: 'api-p' }));
    const names = (await iot.send(new ListPoliciesCommand({}))).policies?.map((x) => x.policyName);
    expect(names).not.toContain('api-p');
  });

  it('attachments, effective policies through thing groups, TestAuthorization', async () => {
    const c = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    await iot.send(new CreateThingCommand({ thingName: 'eff-thing' }));
    await iot.send(new AttachThingPrincipalCommand({ thingName: 'eff-thing', principal: c.certificateArn }));
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'eff-group' }));
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'eff-group', thingName: 'eff-thing' }));
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'cert-p',
        policyDocument: doc(`${A}:topic/dev/\${iot:ClientId}/*`),
      }),
    );
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'group-p',
        policyDocument: doc(`${A}:topic/dev/secret`, 'Deny'),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: 'cert-p', target: c.certificateArn }));
    await iot.send(new AttachPolicyCommand({ policyName: 'group-p', target: `${A}:thinggroup/eff-group` }));

    const attached = await iot.send(new ListAttachedPoliciesCommand({ target: c.certificateArn }));
    expect(attached.policies?.map((p) => p.policyName)).toEqual(['cert-p']);
    const recursive = await iot.send(
      new ListAttachedPoliciesCommand({ target: c.certificateArn, recursive: true }),
    );
    expect(recursive.policies?.map((p) => p.policyName).sort()).toEqual(['cert-p', 'group-p']);
    await iot.send(
      new CreateThingGroupCommand({ thingGroupName: 'eff-child', parentGroupName: 'eff-group' }),
    );
    const inherited = await iot.send(
      new ListAttachedPoliciesCommand({ target: `${A}:thinggroup/eff-child`, recursive: true }),
    );
    expect(inherited.policies?.map((p) => p.policyName)).toEqual(['group-p']);
    expect(
      (await iot.send(new ListAttachedPoliciesCommand({ target: `${A}:thinggroup/eff-child` }))).policies,
    ).toEqual([]);
    const targets = await iot.send(new ListTargetsForPolicyCommand({ policyName: 'group-p' }));
    expect(targets.targets).toEqual([`${A}:thinggroup/eff-group`]);
    const eff = await iot.send(
      new GetEffectivePoliciesCommand({ principal: c.certificateArn, thingName: 'eff-thing' }),
    );
    expect(eff.effectivePolicies?.map((p) => p.policyName).sort()).toEqual(['cert-p', 'group-p']);

    const t = await iot.send(
      new TestAuthorizationCommand({
        principal: c.certificateArn,
        clientId: 'dev',
        authInfos: [
          { actionType: 'PUBLISH', resources: [`${A}:topic/dev/dev/x`] },
          { actionType: 'PUBLISH', resources: [`${A}:topic/other`] },
        ],
      }),
    );
    expect(t.authResults?.map((r) => r.authDecision)).toEqual(['ALLOWED', 'IMPLICIT_DENY']);
    expect(t.authResults?.[0]?.allowed?.policies?.map((p) => p.policyName)).toEqual(['cert-p']);
    const secret = await iot.send(
      new TestAuthorizationCommand({
        principal: c.certificateArn,
        clientId: 'eff-thing',
        authInfos: [{ actionType: 'PUBLISH', resources: [`${A}:topic/dev/secret`] }],
        policyNamesToAdd: [],
      }),
    );
    expect(secret.authResults?.[0]?.authDecision).toBe('EXPLICIT_DENY');
    expect(secret.authResults?.[0]?.denied?.explicitDeny?.policies?.map((p) => p.policyName)).toEqual([
      'group-p',
    ]);

    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'eff-child' }));
    await iot.send(
      new RemoveThingFromThingGroupCommand({ thingGroupName: 'eff-group', thingName: 'eff-thing' }),
    );
    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'eff-group' }));
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'eff-group' }));
    // a group made again under the same name does not inherit the deleted group's policies
    expect(
      (await iot.send(new ListAttachedPoliciesCommand({ target: `${A}:thinggroup/eff-group` }))).policies,
    ).toEqual([]);
    await iot.send(new DetachPolicyCommand({ policyName: 'cert-p', target: c.certificateArn }));
    expect((await iot.send(new ListAttachedPoliciesCommand({ target: c.certificateArn }))).policies).toEqual(
      [],
    );
    await expect(
      iot.send(new AttachPolicyCommand({ policyName: 'cert-p', target: `${A}:thing/eff-thing` })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      iot.send(new AttachPolicyCommand({ policyName: 'cert-p', target: `${A}:cert/${'0'.repeat(64)}` })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});
