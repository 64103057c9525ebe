/**
 * Firmware updates (issue 11): firmware files stored by content hash, time-limited signed download URLs
 * (HTTPS with ranges, on the HTTP API and the device HTTPS port), the job-document hook that turns AWS's
 * `${aws:iot:s3-presigned-url:...}` into them, and AWS's MQTT file delivery (CreateStream ... ListStreams;
 * `$aws/things/{thing}/streams/{streamId}/...` in JSON and CBOR). Image signing and checking are the CLI's
 * and the device agent's (src/agent owns the signature and job-document format); the platform only stores
 * and serves bytes.
 *
 * Files by role: store.ts + migrations.ts (metadata), files.ts (the bytes), signed-url.ts, presign.ts,
 * service.ts, http.ts (upload and download routes), mqtt.ts (the streams service), api.ts (operations),
 * module.ts (`startOta`).
 *
 * Imports: api (operation declarations), errors, sigv4, store; types only from config, mqtt, observability.
 */
export { startOta, type Ota, type OtaOptions } from './module.js';
export type { OtaService } from './service.js';
export type { FileRecord, StreamRecord } from './store.js';
export { downloadPath } from './service.js';
export { EXPIRES_PARAM, SIGNATURE_PARAM } from './signed-url.js';
