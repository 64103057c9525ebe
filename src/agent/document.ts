/**
 * The firmware job document: what `thingstead ota deploy` writes and the agent runs.
 *
 *   { "operation": "thingstead.ota",
 *     "ota": { "version": "1.2.3", "size": 1048576, "sha256": "<hex>",
 *              "signature": "<base64 DER ECDSA P-256 over SHA-256 of the image>",
 *              "signatureAlgorithm": "ECDSA-P256-SHA256", "signingKeyId": "<hex>",
 *              "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/thingstead/<sha256>}"   (HTTPS)
 *              "stream": { "streamId": "fw-1-2-3", "fileId": 0 } } }                                (MQTT)
 *
 * `url` (resolved by the platform to a signed download URL at delivery time) or `stream` (AWS MQTT file
 * delivery), or both (the agent prefers `url` unless told otherwise). `signingKeyId` names the trusted public
 * key that must verify the signature (keyIdOf of its SPKI).
 */
export const OTA_OPERATION = 'thingstead.ota';
export const SIGNATURE_ALGORITHM = 'ECDSA-P256-SHA256';

export interface OtaDocument {
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly signature: string;
  readonly signatureAlgorithm: string;
  readonly signingKeyId: string;
  readonly url?: string;
  readonly stream?: { readonly streamId: string; readonly fileId: number; readonly version?: number };
  readonly name?: string;
}

/** The OTA part of a job document, or a string saying what is wrong with it. */
export function parseOtaDocument(doc: unknown): OtaDocument | string {
  if (typeof doc !== 'object' || doc === null) return 'the job document is not an object';
  const d = doc as Record<string, unknown>;
  if (d.operation !== OTA_OPERATION)
    return `operation is ${JSON.stringify(d.operation)}, not ${OTA_OPERATION}`;
  const o = d.ota as Record<string, unknown> | undefined;
  if (typeof o !== 'object' || o === null) return 'the document has no "ota" object';
  for (const k of ['version', 'sha256', 'signature', 'signatureAlgorithm', 'signingKeyId'] as const)
    if (typeof o[k] !== 'string' || o[k] === '') return `ota.${k} must be a non-empty string`;
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0)
    return 'ota.size must be a byte count';
  if (!/^[0-9a-f]{64}$/.test(o.sha256 as string)) return 'ota.sha256 must be 64 lower-case hex digits';
  if (o.signatureAlgorithm !== SIGNATURE_ALGORITHM)
    return `ota.signatureAlgorithm ${String(o.signatureAlgorithm)} is not supported (${SIGNATURE_ALGORITHM})`;
  if (o.url !== undefined && typeof o.url !== 'string') return 'ota.url must be a string';
  const s = o.stream as Record<string, unknown> | undefined;
  if (
    s !== undefined &&
    (typeof s !== 'object' || s === null || typeof s.streamId !== 'string' || typeof s.fileId !== 'number')
  )
    return 'ota.stream must be {streamId, fileId}';
  if (o.url === undefined && s === undefined) return 'the document names neither ota.url nor ota.stream';
  return o as unknown as OtaDocument;
}

/** Compare dotted versions numerically part by part (`1.10.0` > `1.9.2`); non-numeric parts as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}
