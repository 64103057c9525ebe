import { randomUUID, type X509Certificate } from 'node:crypto';
import { E } from '../errors/index.js';
import type { ChangeOf } from '../events/index.js';
import {
  certificateIdOf,
  checkId,
  checkVerificationCertificate,
  newRegistrationCode,
  normalizePem,
  parseCertificatePem,
  parseStatus,
} from './certificates.js';
import type { CaRecord, CertificateStore, ListOptions, Page } from './certificates-store.js';

/**
 * CA certificates (reference §3.2, AWS IoT Developer Guide "Register your CA certificate"): bring-your-own
 * CA with the registration-code proof of possession, statuses, auto-registration and deletion rules. The
 * platform CA is described like a registered CA but cannot be changed or deleted through the API. Which CAs
 * devices may chain to follows from these records (trust-list.ts).
 */
export interface CaService {
  caCertificateArn(certificateId: string): string;
  getRegistrationCode(): Promise<string>;
  deleteRegistrationCode(): Promise<void>;
  registerCa(input: {
    caCertificate: unknown;
    verificationCertificate?: unknown;
    setAsActive?: boolean;
    allowAutoRegistration?: boolean;
    registrationConfig?: Record<string, unknown> | null;
    certificateMode?: unknown;
  }): Promise<CaRecord>;
  describeCa(certificateId: string): Promise<CaRecord>;
  listCas(options?: ListOptions): Promise<Page<CaRecord>>;
  updateCa(
    certificateId: string,
    change: {
      newStatus?: unknown;
      newAutoRegistrationStatus?: unknown;
      registrationConfig?: Record<string, unknown> | null;
      removeAutoRegistration?: boolean;
    },
  ): Promise<void>;
  deleteCa(certificateId: string): Promise<void>;
}

const REGISTRATION_CODE_KEY = 'registration_code';

export function createCaService(options: {
  store: CertificateStore;
  platformCa: X509Certificate;
  platformCaId: string;
  scope: { readonly region: string; readonly accountId: string };
  /** The account's registration code when another context owns it (the registry); default: this service's. */
  registrationCode?: (() => Promise<string | undefined>) | undefined;
  /** Publish a change event after the commit; resolves once this process applied it. */
  emit: (change: ChangeOf<'ca'>) => Promise<void>;
}): CaService {
  const { store, platformCa, platformCaId, scope, emit } = options;
  const caCertificateArn = (id: string) => `arn:aws:iot:${scope.region}:${scope.accountId}:cacert/${id}`;

  const service: CaService = {
    caCertificateArn,
    getRegistrationCode: () => store.putSettingOnce(REGISTRATION_CODE_KEY, newRegistrationCode()),
    deleteRegistrationCode: () => store.deleteSetting(REGISTRATION_CODE_KEY),

    async registerCa(input) {
      const caCert = parseCertificatePem(input.caCertificate, 'caCertificate');
      if (!caCert.ca) throw E.CaNotCa();
      const mode = input.certificateMode ?? 'DEFAULT';
      if (mode !== 'DEFAULT' && mode !== 'SNI_ONLY') throw E.CaCertificateMode();
      if (mode === 'DEFAULT' || input.verificationCertificate !== undefined) {
        const code = options.registrationCode
          ? await options.registrationCode()
          : await store.getSetting(REGISTRATION_CODE_KEY);
        if (!code) {
          throw E.RegistrationCodeMissing();
        }
        if (input.verificationCertificate === undefined) {
          throw E.VerificationRequired();
        }
        checkVerificationCertificate(caCert, input.verificationCertificate, code);
      }
      const id = certificateIdOf(caCert.raw);
      const existing = id === platformCaId || (await store.getCa(id));
      if (existing) {
        throw E.CaAlreadyExists(
          { caCertificateId: id },
          {
            resourceId: id,
            resourceArn: caCertificateArn(id),
          },
        );
      }
      const now = Date.now();
      const record: CaRecord = {
        certificateId: id,
        certificatePem: normalizePem(caCert),
        status: input.setAsActive ? 'ACTIVE' : 'INACTIVE',
        autoRegistrationStatus: input.allowAutoRegistration ? 'ENABLE' : 'DISABLE',
        registrationConfig: input.registrationConfig ?? null,
        createdAt: now,
        lastModifiedAt: now,
        customerVersion: 1,
        generationId: randomUUID(),
        notBefore: Date.parse(caCert.validFrom),
        notAfter: Date.parse(caCert.validTo),
      };
      await store.insertCa(record);
      await emit({ kind: 'ca', certificateId: id, status: record.status });
      return record;
    },

    async describeCa(id) {
      const cid = checkId(id, 'caCertificateId');
      if (cid === platformCaId) {
        return {
          certificateId: platformCaId,
          certificatePem: normalizePem(platformCa),
          status: 'ACTIVE',
          autoRegistrationStatus: 'DISABLE',
          registrationConfig: null,
          createdAt: Date.parse(platformCa.validFrom),
          lastModifiedAt: Date.parse(platformCa.validFrom),
          customerVersion: 1,
          generationId: platformCaId.slice(0, 36),
          notBefore: Date.parse(platformCa.validFrom),
          notAfter: Date.parse(platformCa.validTo),
        };
      }
      const record = await store.getCa(cid);
      if (!record) throw E.CaNotFound({ caCertificateId: id });
      return record;
    },

    listCas: (o) => store.listCas(o),

    async updateCa(id, change) {
      const record = await service.describeCa(id);
      if (record.certificateId === platformCaId) {
        throw E.PlatformCaImmutable();
      }
      const status =
        change.newStatus !== undefined
          ? (parseStatus(change.newStatus, ['ACTIVE', 'INACTIVE'], 'newStatus') as 'ACTIVE' | 'INACTIVE')
          : undefined;
      const auto =
        change.newAutoRegistrationStatus !== undefined
          ? (parseStatus(
              change.newAutoRegistrationStatus,
              ['ENABLE', 'DISABLE'],
              'newAutoRegistrationStatus',
            ) as 'ENABLE' | 'DISABLE')
          : undefined;
      await store.updateCa(record.certificateId, {
        status,
        autoRegistrationStatus: auto,
        registrationConfig: change.removeAutoRegistration ? null : change.registrationConfig,
        lastModifiedAt: Date.now(),
        generationId: randomUUID(),
      });
      if (status && status !== record.status)
        await emit({ kind: 'ca', certificateId: record.certificateId, status });
    },

    async deleteCa(id) {
      const record = await service.describeCa(id);
      if (record.certificateId === platformCaId) throw E.PlatformCaUndeletable();
      if (record.status === 'ACTIVE') {
        throw E.CaActive({ caCertificateId: record.certificateId });
      }
      const n = await store.countByCa(record.certificateId);
      if (n > 0) {
        throw E.CaHasCertificates({ caCertificateId: record.certificateId, count: n });
      }
      await store.deleteCa(record.certificateId);
      await emit({ kind: 'ca', certificateId: record.certificateId, status: 'DELETED' });
    },
  };
  return service;
}
