import type { X509Certificate } from 'node:crypto';
import { isIssuedBy, parseCertificatePem } from './certificates.js';
import type { CertificateStore } from './certificates-store.js';

/**
 * The trust list: which CAs a device certificate may chain to. The platform CA always; a registered CA
 * (RegisterCACertificate) while it is ACTIVE. TLS listeners load `trustedCaPems()` and reload it on a
 * `ca` change event; the certificate service asks `issuerOf` and `caRefusal` when a client connects.
 */
export interface TrustList {
  /** The id of the CA that issued `cert`: the platform CA or a registered CA of any status; null if none. */
  issuerOf(cert: X509Certificate): Promise<string | null>;
  /** Why a certificate of CA `caId` may not connect now (`unknown_ca`, `ca_inactive`), or null when it may. */
  caRefusal(caId: string): Promise<'unknown_ca' | 'ca_inactive' | null>;
  /** PEMs TLS listeners should trust: the platform CA and every ACTIVE registered CA. */
  trustedCaPems(): Promise<string[]>;
}

export function createTrustList(options: {
  store: CertificateStore;
  /** The platform CA: its PEM as configured, the parsed certificate and its id. */
  platformCaPem: string;
  platformCa: X509Certificate;
  platformCaId: string;
}): TrustList {
  const { store, platformCa, platformCaId } = options;
  return {
    async issuerOf(cert) {
      if (isIssuedBy(cert, platformCa)) return platformCaId;
      let marker: string | undefined;
      do {
        const p = await store.listCas({ marker, ascending: true });
        for (const c of p.items) {
          if (isIssuedBy(cert, parseCertificatePem(c.certificatePem))) return c.certificateId;
        }
        marker = p.nextMarker;
      } while (marker);
      return null;
    },

    async caRefusal(caId) {
      if (caId === platformCaId) return null;
      const caRecord = await store.getCa(caId);
      if (!caRecord) return 'unknown_ca';
      if (caRecord.status !== 'ACTIVE') return 'ca_inactive';
      return null;
    },

    async trustedCaPems() {
      const pems = [options.platformCaPem];
      let marker: string | undefined;
      do {
        const p = await store.listCas({ marker, ascending: true });
        for (const c of p.items) if (c.status === 'ACTIVE') pems.push(c.certificatePem);
        marker = p.nextMarker;
      } while (marker);
      return pems;
    },
  };
}
