/**
 * AWS's `${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/key}` job-document placeholder, resolved
 * when a job document is handed to a device (reference §3.5 presignedUrlConfig): Thingstead has no S3, so
 * the object key's last path segment names a stored firmware file (its SHA-256, or the name it was uploaded
 * under) and the placeholder becomes Thingstead's own signed download URL for it, valid for
 * `presignedUrlConfig.expiresInSec` (AWS: 60..3600, default 3600) from the moment of delivery.
 */
const PLACEHOLDER = /\$\{aws:iot:s3-presigned-url:([^}]*)\}/g;
const MARKER = '${aws:iot:s3-presigned-url:';

/** The stored file an S3 URL stands for: the last segment of its object key, percent-decoded. */
export function fileRefOf(s3Url: string): string {
  let path: string;
  try {
    path = new URL(s3Url).pathname;
  } catch {
    path = s3Url;
  }
  const last = path.split('/').filter(Boolean).pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** True when a document holds a presigned-URL placeholder (cheap: documents without one are left alone). */
export const hasPresignedPlaceholder = (document: string): boolean => document.includes(MARKER);

/**
 * The document with every placeholder replaced by `urlFor(fileRef)`, JSON-escaped (the placeholder stands
 * inside a JSON string).
 */
export function resolvePresigned(document: string, urlFor: (fileRef: string) => string): string {
  if (!hasPresignedPlaceholder(document)) return document;
  return document.replace(PLACEHOLDER, (_, s3Url: string) =>
    JSON.stringify(urlFor(fileRefOf(s3Url))).slice(1, -1),
  );
}
