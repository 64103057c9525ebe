/**
 * The reference device agent (issue 11): `thingstead agent` runs firmware jobs on a device (or, later, a
 * gateway on behalf of its field devices): jobs over MQTT, the image over HTTPS ranges or MQTT file
 * delivery, checks (size, SHA-256, ECDSA P-256 signature, anti-rollback version), install and rollback
 * hooks, and the outcome in the job execution's statusDetails. Also owns the firmware job-document format
 * and the image signature scheme, which `thingstead ota` writes.
 *
 * Files by role: agent.ts (the job loop), document.ts (the job document), download.ts (HTTPS and MQTT
 * streams), signing.ts (keys, signatures), hooks.ts (install / rollback commands).
 * Imports: no other context (it runs on devices, talking to the platform over the wire only).
 */
export { startAgent, type Agent, type AgentOptions } from './agent.js';
export {
  OTA_OPERATION,
  SIGNATURE_ALGORITHM,
  compareVersions,
  parseOtaDocument,
  type OtaDocument,
} from './document.js';
export { digestFile, generateSigningKey, keyIdOf, signFile, verifyFile } from './signing.js';
export { downloadHttps, downloadStream, DownloadError } from './download.js';
