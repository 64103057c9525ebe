import { randomUUID, type X509Certificate } from 'node:crypto';
import { E } from '../errors/index.js';
import { createLocalChannel, type ChangeChannel, type ChangeOf } from '../events/index.js';
import type { Database } from '../store/index.js';
import { createCaService, type CaService } from './ca-service.js';
import {
  certificateIdOf,
  certificateInfo,
  checkId,
  createKeysAndCertificate,
  isIssuedBy,
  normalizePem,
  parseCertificatePem,
  parseStatus,
  signCsr,
  type KeyType,
  type SigningCa,
} from './certificates.js';
import {
  openCertificateStore,
  type CertificateRecord,
  type CertificateStatus,
  type CertificateStore,
  type ListOptions,
  type Page,
} from './certificates-store.js';
import { createTrustList, type TrustList } from './trust-list.js';

/**
 * The certificate registry with AWS semantics (reference §3.2, §3.12): device certificates (issuing, CSR
 * signing, registration with and without a CA, statuses and deletion rules) here; CA certificates and the
 * registration code in ca-service.ts; which CAs a device may chain to in trust-list.ts. It answers the
 * broker's question "may this client certificate connect?", and publishes a change event (`certificate`,
 * `ca`) after every committed status change, which live enforcement and the TLS trust lists of every
 * process subscribe to.
 */

export interface ArnScopeLike {
  readonly region: string;
  readonly accountId: string;
}

/** What other contexts know about a certificate principal; asked before DeleteCertificate. */
export interface CertificateAttachments {
  /** Things the certificate ARN is attached to (registry). */
  thingsOf(certificateArn: string): Promise<readonly string[]>;
  /** Policies attached to the certificate ARN (policy context). */
  policiesOf(certificateArn: string): Promise<readonly string[]>;
  /** forceDelete: detach every policy from the certificate ARN. */
  detachAllPolicies(certificateArn: string): Promise<void>;
}

/** The change events this service publishes (status: a CertificateStatus, or DELETED). */
export type CertificateChange = ChangeOf<'certificate' | 'ca'>;

export type CertificateCheck =
  | { readonly ok: true; readonly record: CertificateRecord }
  | {
      readonly ok: false;
      /** Stable reason for counters and logs. */
      readonly reason:
        | 'unregistered'
        | 'inactive'
        | 'revoked'
        | 'pending_activation'
        | 'expired'
        | 'ca_inactive'
        | 'unknown_ca';
      readonly certificateId: string;
    };

export interface CertificateService extends CaService, Pick<TrustList, 'trustedCaPems'> {
  /** sha256 of the platform CA's DER: certificates it issues carry this caCertificateId. */
  readonly platformCaId: string;
  certificateArn(certificateId: string): string;
  /** The certificate id in a cert ARN (`arn:aws:iot:...:cert/<id>`), or null. */
  idFromArn(arn: string): string | null;

  createKeysAndCertificate(options: {
    setAsActive?: boolean;
    keyType?: KeyType;
    commonName?: string;
  }): Promise<CertificateRecord & { privateKeyPem: string; publicKeyPem: string }>;
  createFromCsr(csrPem: unknown, options: { setAsActive?: boolean }): Promise<CertificateRecord>;
  register(input: {
    certificatePem: unknown;
    caCertificatePem?: unknown;
    status?: unknown;
    setAsActive?: boolean;
  }): Promise<CertificateRecord>;
  registerWithoutCa(input: { certificatePem: unknown; status?: unknown }): Promise<CertificateRecord>;
  describe(certificateId: string): Promise<CertificateRecord>;
  list(options?: ListOptions): Promise<Page<CertificateRecord>>;
  updateStatus(certificateId: string, newStatus: unknown): Promise<void>;
  delete(certificateId: string, options?: { forceDelete?: boolean }): Promise<void>;

  /**
   * May a client certificate presented on mutual TLS connect? It must be registered and ACTIVE, within its
   * validity, and issued by the platform CA or an ACTIVE registered CA. A certificate of an
   * auto-registration CA that is not yet registered is registered as PENDING_ACTIVATION (and refused).
   */
  check(cert: X509Certificate): Promise<CertificateCheck>;
}

/**
 * @example const certs = await openCertificateService({ db, ca: { certPem, keyPem }, scope: { region, accountId } });
 */
export async function openCertificateService(options: {
  db: Database;
  ca: SigningCa;
  scope: ArnScopeLike;
  store?: CertificateStore;
  /**
   * The account's registration code, when another context owns GetRegistrationCode (the registry);
   * default: this service's own code.
   */
  registrationCode?: () => Promise<string | undefined>;
  /** Who else holds the certificate (things, policies), asked by DeleteCertificate; default: nobody. */
  attachments?: CertificateAttachments;
  /** Change events published after each status change (default: in-process only). */
  events?: ChangeChannel;
}): Promise<CertificateService> {
  const store = options.store ?? (await openCertificateStore(options.db));
  const { scope, ca } = options;
  const platformCa = parseCertificatePem(ca.certPem, 'platform CA');
  const platformCaId = certificateIdOf(platformCa.raw);
  const attachments = options.attachments ?? null;
  const events = options.events ?? createLocalChannel();
  /** After the commit; resolves once this process applied it (e.g. disconnected the certificate's clients). */
  const emit = (change: CertificateChange) => events.publish(change);
  const certArnPrefix = `arn:aws:iot:${scope.region}:${scope.accountId}:cert/`;
  const trust = createTrustList({ store, platformCaPem: ca.certPem, platformCa, platformCaId });
  const cas = createCaService({
    store,
    platformCa,
    platformCaId,
    scope,
    registrationCode: options.registrationCode,
    emit,
  });

  const service: CertificateService = {
    ...cas,
    trustedCaPems: () => trust.trustedCaPems(),
    platformCaId,
    certificateArn: (id) => certArnPrefix + id,
    idFromArn(arn) {
      const m = /^arn:aws:iot:[^:]*:[^:]*:cert\/([a-fA-F0-9]{64})$/.exec(arn);
      return m ? m[1]!.toLowerCase() : null;
    },

    async createKeysAndCertificate(o) {
      const issued = await createKeysAndCertificate(ca, { keyType: o.keyType, commonName: o.commonName });
      const record = await save(
        issued.certificatePem,
        platformCaId,
        o.setAsActive ? 'ACTIVE' : 'INACTIVE',
        'DEFAULT',
      );
      return { ...record, privateKeyPem: issued.privateKeyPem, publicKeyPem: issued.publicKeyPem };
    },

    async createFromCsr(csrPem, o) {
      const issued = await signCsr(ca, csrPem);
      return save(issued.certificatePem, platformCaId, o.setAsActive ? 'ACTIVE' : 'INACTIVE', 'DEFAULT');
    },

    async register(input) {
      const cert = parseCertificatePem(input.certificatePem);
      let caId: string | null;
      if (input.caCertificatePem !== undefined && input.caCertificatePem !== null) {
        const caCert = parseCertificatePem(input.caCertificatePem, 'caCertificatePem');
        caId = certificateIdOf(caCert.raw);
        if (caId !== platformCaId && !(await store.getCa(caId))) {
          throw E.CaRequiredNotRegistered({ caCertificateId: caId });
        }
        if (!isIssuedBy(cert, caCert)) {
          throw E.CertificateNotSignedByCa();
        }
      } else {
        caId = await trust.issuerOf(cert);
        if (!caId) {
          throw E.CertificateNoRegisteredCa();
        }
      }
      const status =
        input.status !== undefined
          ? (parseStatus(
              input.status,
              ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'PENDING_ACTIVATION'],
              'status',
            ) as CertificateStatus)
          : input.setAsActive
            ? 'ACTIVE'
            : 'INACTIVE';
      return save(normalizePem(cert), caId, status, 'DEFAULT');
    },

    async registerWithoutCa(input) {
      const cert = parseCertificatePem(input.certificatePem);
      const status =
        input.status !== undefined
          ? (parseStatus(
              input.status,
              ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'PENDING_ACTIVATION'],
              'status',
            ) as CertificateStatus)
          : 'INACTIVE';
      return save(normalizePem(cert), null, status, 'SNI_ONLY');
    },

    async describe(id) {
      const record = await store.get(checkId(id));
      if (!record) throw E.CertificateNotFound({ certificateId: id });
      return record;
    },

    list: (o) => store.list(o),

    async updateStatus(id, newStatus) {
      const status = parseStatus(
        newStatus,
        ['ACTIVE', 'INACTIVE', 'REVOKED'],
        'newStatus',
      ) as CertificateStatus;
      const record = await service.describe(id);
      if (record.status === status) return; // idempotent (reference §3.12)
      if (record.status === 'REVOKED') {
        // [U] AWS refuses to bring a revoked certificate back; a revocation is final here.
        throw E.CertificateRevoked({ certificateId: record.certificateId });
      }
      await store.update(record.certificateId, {
        status,
        lastModifiedAt: Date.now(),
        generationId: randomUUID(),
      });
      await emit({ kind: 'certificate', certificateId: record.certificateId, status });
    },

    async delete(id, o = {}) {
      const record = await service.describe(id);
      if (record.status === 'ACTIVE') {
        throw E.CertificateActive({ certificateId: record.certificateId });
      }
      const arn = service.certificateArn(record.certificateId);
      if (attachments) {
        const things = await attachments.thingsOf(arn);
        if (things.length) {
          throw E.CertificateAttachedThings({ certificateId: record.certificateId, things });
        }
        const policies = await attachments.policiesOf(arn);
        if (policies.length && !o.forceDelete) {
          throw E.CertificateAttachedPolicies({ certificateId: record.certificateId, policies });
        }
        if (policies.length) await attachments.detachAllPolicies(arn);
      }
      await store.delete(record.certificateId);
      await emit({ kind: 'certificate', certificateId: record.certificateId, status: 'DELETED' });
    },

    async check(cert) {
      const certificateId = certificateIdOf(cert.raw);
      const now = Date.now();
      if (Date.parse(cert.validTo) < now || Date.parse(cert.validFrom) > now) {
        return { ok: false, reason: 'expired', certificateId };
      }
      const record = await store.get(certificateId);
      if (!record) {
        const caId = await trust.issuerOf(cert);
        if (!caId) return { ok: false, reason: 'unknown_ca', certificateId };
        const caRecord = caId === platformCaId ? null : await store.getCa(caId);
        if (caRecord?.autoRegistrationStatus === 'ENABLE' && caRecord.status === 'ACTIVE') {
          const saved = await save(normalizePem(cert), caId, 'PENDING_ACTIVATION', 'DEFAULT').catch(
            () => null,
          );
          if (saved) {
            await emit({
              kind: 'certificate',
              certificateId,
              status: 'PENDING_ACTIVATION',
              autoRegisteredBy: caId,
            });
          }
          return { ok: false, reason: 'pending_activation', certificateId };
        }
        return { ok: false, reason: 'unregistered', certificateId };
      }
      if (record.status !== 'ACTIVE') {
        const reason =
          record.status === 'REVOKED'
            ? 'revoked'
            : record.status === 'PENDING_ACTIVATION'
              ? 'pending_activation'
              : 'inactive';
        return { ok: false, reason, certificateId };
      }
      if (record.caCertificateId === null) return { ok: true, record }; // registered without CA
      const refusal = await trust.caRefusal(record.caCertificateId);
      if (refusal) return { ok: false, reason: refusal, certificateId };
      return { ok: true, record };
    },
  };

  async function save(
    pem: string,
    caId: string | null,
    status: CertificateStatus,
    mode: 'DEFAULT' | 'SNI_ONLY',
  ): Promise<CertificateRecord> {
    const info = certificateInfo(pem);
    const id = certificateIdOf(pem);
    const now = Date.now();
    const record: CertificateRecord = {
      certificateId: id,
      certificatePem: pem,
      caCertificateId: caId,
      status,
      mode,
      createdAt: now,
      lastModifiedAt: now,
      customerVersion: 1,
      generationId: randomUUID(),
      notBefore: info.notBefore.getTime(),
      notAfter: info.notAfter.getTime(),
    };
    if (!(await store.insert(record))) {
      throw E.CertificateAlreadyExists(
        { certificateId: id },
        {
          resourceId: id,
          resourceArn: certArnPrefix + id,
        },
      );
    }
    return record;
  }

  return service;
}
