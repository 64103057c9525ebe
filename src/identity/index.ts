/**
 * Identity: the platform CA and TLS material, device certificates, access keys and SigV4.
 * Public surface only; internals stay in this folder.
 */
export {
  ensureServerTls,
  createCa,
  issueServerCertificate,
  writeSecretFile,
  type ServerTls,
  type PemPair,
} from './pki.js';
