import 'reflect-metadata';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { webcrypto, randomBytes, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as never);

const EC: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = {
  name: 'ECDSA',
  namedCurve: 'P-256',
  hash: 'SHA-256',
};

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** The TLS material a platform listens with. */
export interface ServerTls {
  /** Platform CA certificate (PEM); devices trust it, and it signs device certificates. */
  caPem: string;
  caKeyPem: string | null;
  certPem: string;
  keyPem: string;
  /** Paths printed at start so a user can point mosquitto_pub --cafile at them. */
  caFile: string;
}

/** Write a file readable by the owner only (mode 0600), whatever the umask. */
export function writeSecretFile(path: string, contents: string): void {
  writeFileSync(path, contents, { mode: 0o600 });
  chmodSync(path, 0o600);
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive
  return bytes.toString('hex');
}

/** Create a self-signed platform CA (EC P-256, 10 years). */
export async function createCa(commonName: string): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=Thingstead`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 10 * 365 * 86_400_000),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return await webcrypto.subtle.importKey('pkcs8', Buffer.from(b64, 'base64'), EC, false, ['sign']);
}

/** Issue a TLS server certificate for `names` (DNS names and IP addresses), signed by the CA. */
export async function issueServerCertificate(ca: PemPair, names: readonly string[]): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const caCert = new x509.X509Certificate(ca.certPem);
  const notBefore = new Date(Date.now() - 60_000);
  const isIp = (n: string) => /^[\d.]+$/.test(n) || n.includes(':');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? 'localhost'}, O=Thingstead`,
    issuer: caCert.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 825 * 86_400_000),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: await importKeyPem(ca.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        [...new Set(names)].map((n) => (isIp(n) ? { type: 'ip', value: n } : { type: 'dns', value: n })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * Load the operator's TLS files, or on first start create the platform CA (`<dataDir>/ca.pem`,
 * `ca.key`) and a server certificate for localhost, 127.0.0.1 and the host name. Keys are mode 0600.
 */
export async function ensureServerTls(options: {
  dataDir: string;
  hostname: string;
  certFile: string | null;
  keyFile: string | null;
  caFile: string | null;
}): Promise<ServerTls> {
  const dir = join(options.dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = options.caFile ?? join(dir, 'ca.pem');
  const caKeyFile = join(dir, 'ca.key');
  let ca: PemPair;
  if (options.caFile) {
    ca = { certPem: readFileSync(options.caFile, 'utf8'), keyPem: '' };
  } else if (existsSync(caFile) && existsSync(caKeyFile)) {
    ca = { certPem: readFileSync(caFile, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8') };
  } else {
    ca = await createCa(`Thingstead CA ${options.hostname}`);
    writeSecretFile(caKeyFile, ca.keyPem);
    writeFileSync(caFile, ca.certPem, { mode: 0o644 });
  }
  if (options.certFile && options.keyFile) {
    return {
      caPem: ca.certPem,
      caKeyPem: ca.keyPem || null,
      certPem: readFileSync(options.certFile, 'utf8'),
      keyPem: readFileSync(options.keyFile, 'utf8'),
      caFile,
    };
  }
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  const names = ['localhost', '127.0.0.1', '::1', options.hostname];
  if (existsSync(certFile) && existsSync(keyFile)) {
    const existing = new X509Certificate(readFileSync(certFile));
    const stillValid = new Date(existing.validTo).getTime() > Date.now() + 86_400_000;
    const coversHost = existing.subjectAltName?.includes(`DNS:${options.hostname}`) ?? false;
    if (stillValid && coversHost && existing.checkIssued(new X509Certificate(ca.certPem))) {
      return {
        caPem: ca.certPem,
        caKeyPem: ca.keyPem,
        certPem: readFileSync(certFile, 'utf8'),
        keyPem: readFileSync(keyFile, 'utf8'),
        caFile,
      };
    }
  }
  const server = await issueServerCertificate(ca, names);
  writeSecretFile(keyFile, server.keyPem);
  writeFileSync(certFile, server.certPem, { mode: 0o644 });
  return { caPem: ca.certPem, caKeyPem: ca.keyPem, certPem: server.certPem, keyPem: server.keyPem, caFile };
}
