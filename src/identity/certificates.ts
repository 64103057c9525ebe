import 'reflect-metadata';
import { createHash, generateKeyPair, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import { E } from '../errors/index.js';

/**
 * Device certificates (reference §3.2): issue from the platform CA, sign CSRs, identify certificates by
 * the SHA-256 of their DER (as AWS does), check chains, and prove possession of a CA key with the
 * registration code. X.509 work is done by @peculiar/x509 and node:crypto; nothing here parses ASN.1.
 */

x509.cryptoProvider.set(webcrypto as never);

const generateKeyPairAsync = promisify(generateKeyPair);

export type KeyType = 'rsa-2048' | 'ec-p256';

/** The CA that signs device certificates: the platform CA (<dataDir>/tls/ca.pem and ca.key). */
export interface SigningCa {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssuedCertificate {
  readonly certificateId: string;
  readonly certificatePem: string;
}

export interface KeysAndCertificate extends IssuedCertificate {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

/** AWS-issued device certificates expire at the end of 2049; ours do too. */
const DEVICE_NOT_AFTER = new Date('2049-12-31T23:59:59Z');

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** certificateId: lowercase hex SHA-256 of the certificate's DER (64 chars, reference §3.11). */
export function certificateIdOf(pemOrDer: string | Buffer): string {
  const der = typeof pemOrDer === 'string' ? new X509Certificate(pemOrDer).raw : pemOrDer;
  return createHash('sha256').update(der).digest('hex');
}

/** Parse one PEM certificate, refusing anything else with CertificateValidationException. */
export function parseCertificatePem(pem: unknown, what = 'certificatePem'): X509Certificate {
  if (typeof pem !== 'string' || !PEM_CERT.test(pem)) {
    throw E.CertificateNotPem({ what });
  }
  try {
    return new X509Certificate(PEM_CERT.exec(pem)![0]);
  } catch (err) {
    throw E.CertificateUnparsable({ what, reason: (err as Error).message });
  }
}

/** PEM of a certificate, normalized (one certificate, trailing newline). */
export function normalizePem(cert: X509Certificate): string {
  return cert.toString().trim() + '\n';
}

/** Did `ca` issue `cert` (names and signature)? */
export function isIssuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

let caKeyCache: { pem: string; key: Promise<webcrypto.CryptoKey> } | null = null;
function caSigningKey(ca: SigningCa): Promise<webcrypto.CryptoKey> {
  if (caKeyCache?.pem !== ca.keyPem) {
    const b64 = ca.keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    caKeyCache = {
      pem: ca.keyPem,
      key: webcrypto.subtle.importKey(
        'pkcs8',
        Buffer.from(b64, 'base64'),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['sign'],
      ),
    };
  }
  return caKeyCache.key;
}

async function issue(
  ca: SigningCa,
  publicKey: x509.PublicKey | string,
  subject: string,
  extraDays?: number,
): Promise<IssuedCertificate> {
  if (!ca.keyPem) {
    throw E.PlatformCaKeyMissing();
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = extraDays ? new Date(notBefore.getTime() + extraDays * 86_400_000) : DEVICE_NOT_AFTER;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: typeof publicKey === 'string' ? new x509.PublicKey(publicKey) : publicKey,
    signingKey: await caSigningKey(ca),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const der = Buffer.from(cert.rawData);
  return { certificateId: certificateIdOf(der), certificatePem: cert.toString('pem') + '\n' };
}

/**
 * CreateKeysAndCertificate: a fresh key pair (RSA 2048 as at AWS, or EC P-256) and a certificate for it
 * signed by the platform CA. The private key is returned once and never stored.
 * @example const { certificatePem, privateKeyPem } = await createKeysAndCertificate(ca, { keyType: 'ec-p256' });
 */
export async function createKeysAndCertificate(
  ca: SigningCa,
  options: { keyType?: KeyType; commonName?: string; validityDays?: number } = {},
): Promise<KeysAndCertificate> {
  const keyType = options.keyType ?? 'rsa-2048';
  const pair =
    keyType === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
        })
      : await generateKeyPairAsync('ec', {
          namedCurve: 'P-256',
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        });
  const subject = `CN=${escapeDn(options.commonName ?? 'Thingstead Device Certificate')}`;
  const issued = await issue(ca, pair.publicKey, subject, options.validityDays);
  return { ...issued, publicKeyPem: pair.publicKey, privateKeyPem: pair.privateKey };
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

/**
 * CreateCertificateFromCsr: verify the CSR's self-signature and issue a certificate for its key and
 * subject. Refuses a malformed or forged CSR with CertificateValidationException / InvalidRequestException.
 */
export async function signCsr(ca: SigningCa, csrPem: unknown): Promise<IssuedCertificate> {
  if (typeof csrPem !== 'string' || !/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) {
    throw E.CsrNotPem();
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem.replace('NEW CERTIFICATE REQUEST', 'CERTIFICATE REQUEST'));
  } catch (err) {
    throw E.CsrUnparsable({ reason: (err as Error).message });
  }
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw E.CsrSignature();
  const subject = csr.subject.trim() || 'CN=Thingstead Device Certificate';
  return issue(ca, csr.publicKey, subject);
}

// ---------------------------------------------------------------------------------------------------------
// Fields for policy variables (reference §9.4)

const DN_OIDS: Record<string, string> = {
  '2.5.4.3': 'CommonName',
  '2.5.4.10': 'Organization',
  '2.5.4.11': 'OrganizationalUnit',
  '2.5.4.6': 'Country',
  '2.5.4.8': 'State',
  '2.5.4.7': 'Locality',
  '2.5.4.5': 'SerialNumber',
  '2.5.4.12': 'Title',
  '2.5.4.4': 'Surname',
  '2.5.4.42': 'GivenName',
  '2.5.4.43': 'Initials',
  '2.5.4.65': 'Pseudonym',
  '2.5.4.44': 'GenerationQualifier',
  '2.5.4.46': 'DistinguishedNameQualifier',
  '1.2.840.113549.1.9.1': 'EmailAddress',
};

function dnFields(name: x509.Name): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [oid, attr] of Object.entries(DN_OIDS)) {
    const values = name.getField(oid);
    if (values.length) out[attr] = values;
  }
  return out;
}

function altNames(ext: x509.SubjectAlternativeNameExtension | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!ext) return out;
  const map: Record<string, string> = {
    dns: 'DNSName',
    email: 'RFC822Name',
    url: 'UniformResourceIdentifier',
    ip: 'IPAddress',
    dn: 'DirectoryName',
  };
  for (const n of ext.names.items) {
    const key = map[n.type];
    if (key) (out[key] ??= []).push(n.value);
  }
  return out;
}

/** Subject/issuer fields, alternative names and serial, for iot:Certificate.* variables. */
export interface CertificateInfo {
  readonly subject: Record<string, string[]>;
  readonly issuer: Record<string, string[]>;
  readonly subjectAltNames: Record<string, string[]>;
  readonly issuerAltNames: Record<string, string[]>;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export function certificateInfo(pem: string): CertificateInfo {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const ian = cert.getExtension('2.5.29.18');
  let issuerAlt: Record<string, string[]> = {};
  if (ian) {
    try {
      issuerAlt = altNames(new x509.SubjectAlternativeNameExtension(ian.rawData));
    } catch {
      issuerAlt = {};
    }
  }
  return {
    subject: dnFields(cert.subjectName),
    issuer: dnFields(cert.issuerName),
    subjectAltNames: altNames(san),
    issuerAltNames: issuerAlt,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Request values

const CERT_ID = /^(0x)?[a-fA-F0-9]{64}$/;

/** A certificate id from a request (64 hex digits, optional 0x), lower-cased; InvalidRequest otherwise. */
export function checkId(id: string, what = 'certificateId'): string {
  if (!CERT_ID.test(id)) throw E.CertificateIdFormat({ what });
  return id.replace(/^0x/, '').toLowerCase();
}

/** A status from a request, one of `allowed`; InvalidRequest otherwise. */
export function parseStatus(value: unknown, allowed: readonly string[], what: string): string {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw E.CertificateStatusValue({ what, allowed, value: String(JSON.stringify(value)) });
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Bring-your-own CA

/** A fresh registration code (64 hex chars), as GetRegistrationCode returns. */
export function newRegistrationCode(): string {
  return randomBytes(32).toString('hex');
}

/**
 * RegisterCACertificate proof of possession: the verification certificate must be signed by the CA's
 * key and carry the account's registration code as its subject common name.
 */
export function checkVerificationCertificate(
  ca: X509Certificate,
  verificationPem: unknown,
  registrationCode: string,
): void {
  const verification = parseCertificatePem(verificationPem, 'verificationCertificate');
  if (!isIssuedBy(verification, ca)) {
    throw E.VerificationNotSigned();
  }
  const cn = new x509.X509Certificate(verification.raw).subjectName.getField('2.5.4.3');
  if (!cn.includes(registrationCode)) {
    throw E.VerificationCommonName();
  }
}

/** Is this certificate a CA (basicConstraints cA=true)? */
export function isCaCertificate(cert: X509Certificate): boolean {
  return cert.ca;
}
