/**
 * Identity: the platform CA and TLS material (pki.ts), device certificates (certificates-service.ts), CA
 * certificates and the registration code (ca-service.ts), the trust list of CAs devices may chain to
 * (trust-list.ts), access keys (credentials.ts), and device authentication and authorization on MQTT and
 * HTTPS with live enforcement of certificate, key and policy changes (auth-hooks*.ts). (SigV4 itself is
 * the sigv4 context.) `startIdentity` (module.ts) starts
 * certificates, access keys and device auth as a context module. Public surface only; internals stay in
 * this folder.
 * Imports: api (its operation declarations), errors, events, mqtt (the broker's hook types and
 * `authorizeClientPublish`), observability, policy (compiled policies for decisions), sigv4, store.
 */
export {
  ensureServerTls,
  createCa,
  issueServerCertificate,
  writeSecretFile,
  type ServerTls,
  type PemPair,
} from './pki.js';
export {
  openCredentialStore,
  loadMasterKey,
  credentialsProfile,
  KEY_NAME_PATTERN,
  type AccessKey,
  type AccessKeyRole,
  type AccessKeyWithSecret,
  type CredentialStore,
} from './credentials.js';
export {
  createDeviceAuth,
  type AccessKeyLookup,
  type DeviceAuth,
  type PrincipalDirectory,
  type ResolvedPrincipal,
} from './auth-hooks.js';
export { startEnforcement } from './auth-hooks-enforce.js';
export {
  startDeviceHttps,
  type DeviceHttps,
  type DeviceRoute,
  type DeviceRouteContext,
} from './auth-hooks-https.js';
export {
  openCertificateService,
  type CertificateService,
  type CertificateAttachments,
  type CertificateChange,
  type CertificateCheck,
} from './certificates-service.js';
export {
  certificateIdOf,
  createKeysAndCertificate,
  signCsr,
  certificateInfo,
  type KeyType,
  type SigningCa,
} from './certificates.js';
export type { CertificateRecord, CaRecord, CertificateStatus } from './certificates-store.js';
export { certificateOperations } from './api.js';
export { startIdentity, type Identity } from './module.js';
