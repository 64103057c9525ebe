import { E, isThingsteadError } from '../errors/index.js';
import {
  certificateIdOf,
  createKeysAndCertificate,
  signCsr,
  type CertificateService,
  type KeyType,
  type SigningCa,
} from '../identity/index.js';
import type { PolicyService } from '../policy/index.js';
import type { FlowsStore } from './flows-store.js';
import type { OwnershipTokens } from './tokens.js';

/**
 * Certificates the provisioning flows make, through the identity context (its CA signing and its
 * certificate registry):
 * - for CreateKeysAndCertificate / CreateCertificateFromCsr over MQTT: signed by the platform CA, registered
 *   PENDING_ACTIVATION (they become ACTIVE only when RegisterThing completes), with an ownership token. The
 *   token row is written before the certificate, so a crash between the two leaves a token the sweep
 *   removes, never a certificate nobody can claim. A CSR's signature is verified (identity's signCsr).
 * - for CreateProvisioningClaim: a claim certificate, ACTIVE at once and valid for `claimTtlMs` (AWS: five
 *   minutes, as its X.509 validity; recorded with its expiry, and made INACTIVE by the sweep once it
 *   passes), with the template's claim policy attached: iot:Connect, and
 *   iot:Publish/iot:Receive/iot:Subscribe on that template's provisioning topics and the certificate topics,
 *   nothing else.
 */
export interface DeviceCertificates {
  createKeysAndCertificate(o: {
    claimCertificateId?: string | undefined;
    clientId?: string | undefined;
  }): Promise<{
    certificateId: string;
    certificatePem: string;
    privateKey: string;
    ownershipToken: string;
  }>;
  createFromCsr(
    csr: unknown,
    o: { claimCertificateId?: string | undefined; clientId?: string | undefined },
  ): Promise<{
    certificateId: string;
    certificatePem: string;
    privateKey?: undefined;
    ownershipToken: string;
  }>;
  createClaim(templateName: string): Promise<{
    certificateId: string;
    certificatePem: string;
    keyPair: { PublicKey: string; PrivateKey: string };
    /** Epoch seconds. */
    expiration: number;
  }>;
}

/** The claim policy's name for a template. */
export const claimPolicyName = (templateName: string) => `thingstead-claim-${templateName}`;

/** The claim policy document: only the fleet provisioning topics (reference §8.4, §9). */
export function claimPolicyDocument(region: string, accountId: string, templateName: string): string {
  const arn = (kind: 'topic' | 'topicfilter', rest: string) =>
    `arn:aws:iot:${region}:${accountId}:${kind}/${rest}`;
  const topics = [
    '$aws/certificates/create/*',
    '$aws/certificates/create-from-csr/*',
    `$aws/provisioning-templates/${templateName}/provision/*`,
  ];
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' },
      {
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: topics.map((t) => arn('topic', t)),
      },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: topics.map((t) => arn('topicfilter', t)) },
    ],
  });
}

export function createDeviceCertificates(options: {
  certificates: Pick<CertificateService, 'register' | 'certificateArn'>;
  policies: Pick<PolicyService, 'getPolicy' | 'createPolicy' | 'attachPolicy'>;
  ca: SigningCa;
  tokens: OwnershipTokens;
  /** Where claim certificates are recorded with their expiry (the sweep deactivates them after it). */
  claims: Pick<FlowsStore, 'insertClaim'>;
  keyType: KeyType;
  claimTtlMs: number;
  region: string;
  accountId: string;
  now?: () => number;
}): DeviceCertificates {
  const { certificates, policies, ca, tokens } = options;
  const now = options.now ?? Date.now;

  async function pending(
    certificatePem: string,
    o: { claimCertificateId?: string | undefined; clientId?: string | undefined },
  ) {
    const certificateId = certificateIdOf(certificatePem);
    const ownershipToken = await tokens.issue({
      certificateId,
      ...(o.claimCertificateId !== undefined ? { claimCertificateId: o.claimCertificateId } : {}),
      ...(o.clientId !== undefined ? { clientId: o.clientId } : {}),
    });
    await certificates.register({
      certificatePem,
      caCertificatePem: ca.certPem,
      status: 'PENDING_ACTIVATION',
    });
    return { certificateId, ownershipToken };
  }

  async function ensureClaimPolicy(templateName: string): Promise<string> {
    const name = claimPolicyName(templateName);
    try {
      policies.getPolicy(name);
      return name;
    } catch {
      // not there yet
    }
    try {
      await policies.createPolicy(name, claimPolicyDocument(options.region, options.accountId, templateName));
    } catch (err) {
      if (!(isThingsteadError(err) && err.code === 'ResourceAlreadyExists')) throw err;
    }
    return name;
  }

  return {
    async createKeysAndCertificate(o) {
      const issued = await createKeysAndCertificate(ca, { keyType: options.keyType });
      const { certificateId, ownershipToken } = await pending(issued.certificatePem, o);
      return {
        certificateId,
        certificatePem: issued.certificatePem,
        privateKey: issued.privateKeyPem,
        ownershipToken,
      };
    },
    async createFromCsr(csr, o) {
      if (typeof csr !== 'string' || csr === '') throw E.CsrNotPem();
      const issued = await signCsr(ca, csr);
      const { certificateId, ownershipToken } = await pending(issued.certificatePem, o);
      return { certificateId, certificatePem: issued.certificatePem, ownershipToken };
    },
    async createClaim(templateName) {
      const policyName = await ensureClaimPolicy(templateName);
      // notBefore is a minute back (clock skew); the validity is counted from now.
      const validityDays = (options.claimTtlMs + 60_000) / 86_400_000;
      const issued = await createKeysAndCertificate(ca, {
        keyType: options.keyType,
        commonName: `Thingstead provisioning claim ${templateName}`,
        validityDays,
      });
      const record = await certificates.register({
        certificatePem: issued.certificatePem,
        caCertificatePem: ca.certPem,
        status: 'ACTIVE',
      });
      const expiresAt = now() + options.claimTtlMs;
      // Recorded before the policy makes it usable: a claim the sweep cannot find would stay ACTIVE forever.
      await options.claims.insertClaim({ certificateId: record.certificateId, templateName, expiresAt });
      await policies.attachPolicy(policyName, certificates.certificateArn(record.certificateId));
      return {
        certificateId: record.certificateId,
        certificatePem: issued.certificatePem,
        keyPair: { PublicKey: issued.publicKeyPem, PrivateKey: issued.privateKeyPem },
        expiration: Math.floor(expiresAt / 1000),
      };
    },
  };
}
