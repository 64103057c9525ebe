import { iotOperation as op, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import { certificateInfo } from './certificates.js';
import type { CaRecord, CertificateRecord } from './certificates-store.js';
import type { CertificateService } from './certificates-service.js';

/**
 * Certificate and CA operations of the AWS control plane (reference §3.2; routes from the
 * @aws-sdk/client-iot model). GetRegistrationCode is served by the registry; RegisterCACertificate checks
 * the verification certificate against that code.
 */

const seconds = (ms: number) => new Date(ms);
const PAGE_QUERY = {
  pageSize: { type: 'integer' },
  marker: { type: 'string' },
  ascendingOrder: { name: 'isAscendingOrder', type: 'boolean' },
} as const;

function pageSize(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || v < 1 || v > 250) {
    throw E.MemberConstraint({
      value: String(JSON.stringify(v)),
      member: 'pageSize',
      constraint: 'Member must have value between 1 and 250',
    });
  }
  return v;
}

function setAsActive(input: Record<string, any>): boolean {
  return input.setAsActive === true || input.setAsActive === 'true';
}

/** Every certificate operation, bound to the certificate service. */
export function certificateOperations(certs: CertificateService): AwsOperation[] {
  const description = (c: CertificateRecord) => {
    const info = certificateInfo(c.certificatePem);
    return {
      certificateArn: certs.certificateArn(c.certificateId),
      certificateId: c.certificateId,
      ...(c.caCertificateId ? { caCertificateId: c.caCertificateId } : {}),
      status: c.status,
      certificatePem: c.certificatePem,
      ownedBy: '',
      creationDate: seconds(c.createdAt),
      lastModifiedDate: seconds(c.lastModifiedAt),
      customerVersion: c.customerVersion,
      generationId: c.generationId,
      validity: { notBefore: info.notBefore, notAfter: info.notAfter },
      certificateMode: c.mode,
    };
  };
  const summary = (c: CertificateRecord) => ({
    certificateArn: certs.certificateArn(c.certificateId),
    certificateId: c.certificateId,
    status: c.status,
    certificateMode: c.mode,
    creationDate: seconds(c.createdAt),
  });
  const caDescription = (c: CaRecord) => ({
    certificateArn: certs.caCertificateArn(c.certificateId),
    certificateId: c.certificateId,
    status: c.status,
    certificatePem: c.certificatePem,
    ownedBy: '',
    creationDate: seconds(c.createdAt),
    autoRegistrationStatus: c.autoRegistrationStatus,
    lastModifiedDate: seconds(c.lastModifiedAt),
    customerVersion: c.customerVersion,
    generationId: c.generationId,
    validity: { notBefore: seconds(c.notBefore), notAfter: seconds(c.notAfter) },
    certificateMode: 'DEFAULT',
  });
  const registered = (c: { certificateId: string }) => ({
    certificateArn: certs.certificateArn(c.certificateId),
    certificateId: c.certificateId,
  });

  return [
    op(
      'CreateKeysAndCertificate',
      'POST',
      '/keys-and-certificate',
      async (i) => {
        const c = await certs.createKeysAndCertificate({ setAsActive: setAsActive(i) });
        return {
          certificateArn: certs.certificateArn(c.certificateId),
          certificateId: c.certificateId,
          certificatePem: c.certificatePem,
          keyPair: { PublicKey: c.publicKeyPem, PrivateKey: c.privateKeyPem },
        };
      },
      { query: { setAsActive: { type: 'boolean' } } },
    ),
    op(
      'CreateCertificateFromCsr',
      'POST',
      '/certificates',
      async (i) => {
        if (typeof i.certificateSigningRequest !== 'string' || i.certificateSigningRequest.length > 4096) {
          throw E.CsrRequired();
        }
        const c = await certs.createFromCsr(i.certificateSigningRequest, { setAsActive: setAsActive(i) });
        return { ...registered(c), certificatePem: c.certificatePem };
      },
      { query: { setAsActive: { type: 'boolean' } } },
    ),
    op(
      'RegisterCertificate',
      'POST',
      '/certificate/register',
      async (i) =>
        registered(
          await certs.register({
            certificatePem: i.certificatePem,
            caCertificatePem: i.caCertificatePem,
            status: i.status,
            setAsActive: setAsActive(i),
          }),
        ),
      { query: { setAsActive: { type: 'boolean' } } },
    ),
    op('RegisterCertificateWithoutCA', 'POST', '/certificate/register-no-ca', async (i) =>
      registered(await certs.registerWithoutCa({ certificatePem: i.certificatePem, status: i.status })),
    ),
    op('DescribeCertificate', 'GET', '/certificates/{certificateId}', async (i) => ({
      certificateDescription: description(await certs.describe(String(i.certificateId))),
    })),
    op(
      'ListCertificates',
      'GET',
      '/certificates',
      async (i) => {
        const page = await certs.list({
          pageSize: pageSize(i.pageSize),
          marker: i.marker,
          ascending: i.ascendingOrder,
        });
        return {
          certificates: page.items.map(summary),
          ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}),
        };
      },
      { query: PAGE_QUERY },
    ),
    op(
      'ListCertificatesByCA',
      'GET',
      '/certificates-by-ca/{caCertificateId}',
      async (i) => {
        const ca = await certs.describeCa(String(i.caCertificateId));
        const page = await certs.list({
          pageSize: pageSize(i.pageSize),
          marker: i.marker,
          ascending: i.ascendingOrder,
          caCertificateId: ca.certificateId,
        });
        return {
          certificates: page.items.map(summary),
          ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}),
        };
      },
      { query: PAGE_QUERY },
    ),
    op(
      'UpdateCertificate',
      'PUT',
      '/certificates/{certificateId}',
      async (i) => {
        await certs.updateStatus(String(i.certificateId), i.newStatus);
      },
      { query: { newStatus: { type: 'string' } } },
    ),
    op(
      'DeleteCertificate',
      'DELETE',
      '/certificates/{certificateId}',
      async (i) => {
        await certs.delete(String(i.certificateId), { forceDelete: i.forceDelete === true });
      },
      { query: { forceDelete: { type: 'boolean' } } },
    ),
    op(
      'RegisterCACertificate',
      'POST',
      '/cacertificate',
      async (i) => {
        const ca = await certs.registerCa({
          caCertificate: i.caCertificate,
          verificationCertificate: i.verificationCertificate,
          setAsActive: setAsActive(i),
          allowAutoRegistration: i.allowAutoRegistration === true,
          registrationConfig: i.registrationConfig ?? null,
          certificateMode: i.certificateMode,
        });
        return { certificateArn: certs.caCertificateArn(ca.certificateId), certificateId: ca.certificateId };
      },
      { query: { setAsActive: { type: 'boolean' }, allowAutoRegistration: { type: 'boolean' } } },
    ),
    op('DescribeCACertificate', 'GET', '/cacertificate/{certificateId}', async (i) => {
      const ca = await certs.describeCa(String(i.certificateId));
      return {
        certificateDescription: caDescription(ca),
        ...(ca.registrationConfig ? { registrationConfig: ca.registrationConfig } : {}),
      };
    }),
    op(
      'ListCACertificates',
      'GET',
      '/cacertificates',
      async (i) => {
        const page = await certs.listCas({
          pageSize: pageSize(i.pageSize),
          marker: i.marker,
          ascending: i.ascendingOrder,
        });
        return {
          certificates: page.items.map((c) => ({
            certificateArn: certs.caCertificateArn(c.certificateId),
            certificateId: c.certificateId,
            status: c.status,
            creationDate: seconds(c.createdAt),
          })),
          ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}),
        };
      },
      { query: PAGE_QUERY },
    ),
    op(
      'UpdateCACertificate',
      'PUT',
      '/cacertificate/{certificateId}',
      async (i) => {
        await certs.updateCa(String(i.certificateId), {
          newStatus: i.newStatus,
          newAutoRegistrationStatus: i.newAutoRegistrationStatus,
          registrationConfig: i.registrationConfig,
          removeAutoRegistration: i.removeAutoRegistration === true,
        });
      },
      { query: { newStatus: { type: 'string' }, newAutoRegistrationStatus: { type: 'string' } } },
    ),
    op('DeleteCACertificate', 'DELETE', '/cacertificate/{certificateId}', async (i) => {
      await certs.deleteCa(String(i.certificateId));
    }),
  ];
}
