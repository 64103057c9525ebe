/**
 * Firmware over HTTP(S):
 * - upload: `PUT /ota/files?sha256=&size=[&name=][&version=]` on the HTTP API port, authenticated by a SigV4
 *   presigned query (X-Amz-*, signing name `iot`, an admin key; the body is streamed to disk, so it is not
 *   in the signature: the signed `sha256` and `size` parameters bind it instead, and a body that does not
 *   match them is refused and discarded).
 * - download: `GET|HEAD /ota/download/{sha256|name}?X-Thingstead-Expires=&X-Thingstead-Signature=` on the
 *   HTTP API port and on the device HTTPS port (mutual TLS), authorized by the signed URL alone (as an S3
 *   presigned URL is), with single byte-range requests (`Range: bytes=a-b`, `a-`, `-n`; 206, 416), so an
 *   interrupted download resumes where it stopped. Refusals are 403 ForbiddenException with the reason
 *   (`missing`, `expired`, `forged`) in the body's `reason`.
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { HttpHandler } from '../api/index.js';
import { E, isThingsteadError, ThingsteadError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { verifySigV4 } from '../sigv4/index.js';
import { blobSize, SHA256_HEX } from './files.js';
import type { OtaService } from './service.js';
import type { UrlRefusal, UrlSigner } from './signed-url.js';

const send = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-RequestId': randomUUID(), ...headers });
  res.end(JSON.stringify(body));
};
const sendError = (res: ServerResponse, err: ThingsteadError, extra: object = {}) =>
  send(
    res,
    err.spec.status,
    { message: err.message, ...err.extra, ...extra },
    { 'x-amzn-ErrorType': err.spec.awsName },
  );

const REASONS: Record<UrlRefusal, string> = {
  missing: 'the URL is not signed (X-Thingstead-Expires and X-Thingstead-Signature are required)',
  expired: 'the signed URL expired',
  forged: 'the URL signature does not match (the path or expiry was altered, or another key signed it)',
};

/** Parse one `Range: bytes=...` against a size: [start, end] inclusive, null for none, 'bad' when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): [number, number] | null | 'bad' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // several ranges or another unit: the whole file (RFC 9110 allows ignoring)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'bad';
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'bad';
  return [start, end];
}

/**
 * Serve one download: the URL must be signed for its path; the file is streamed (ranges honoured).
 * Returns false when the path is not a download path.
 */
export async function serveDownload(
  service: OtaService,
  signer: UrlSigner,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<boolean> {
  const m = /^\/ota\/download\/([^/]+)$/.exec(url.pathname);
  if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  const refused = signer.check(url.pathname, url.searchParams);
  if (refused) {
    const when =
      refused.expiresAt !== undefined ? ` at ${new Date(refused.expiresAt * 1000).toISOString()}` : '';
    sendError(res, E.OtaUrlRefused({ reason: `${REASONS[refused.reason]}${when}` }), {
      reason: refused.reason,
    });
    return true;
  }
  let ref: string;
  try {
    ref = decodeURIComponent(m[1]!);
  } catch {
    sendError(res, E.MalformedPathSegment({ segment: m[1]! }));
    return true;
  }
  const file = await service.findFile(ref);
  const path = file ? service.fileOnDisk(file.sha256) : null;
  const size = path ? blobSize(path) : null;
  if (!file || !path || size === null) {
    sendError(res, E.OtaFileNotFound({ file: ref }));
    return true;
  }
  const range = parseRange(req.headers.range, size);
  const common = {
    'accept-ranges': 'bytes',
    etag: `"${file.sha256}"`,
    'x-amz-meta-sha256': file.sha256,
    ...(file.version !== null ? { 'x-amz-meta-version': file.version } : {}),
  };
  if (range === 'bad') {
    res.writeHead(416, { ...common, 'content-range': `bytes */${size}` });
    res.end();
    return true;
  }
  const [start, end] = range ?? [0, size - 1];
  res.writeHead(range ? 206 : 200, {
    ...common,
    'content-type': 'application/octet-stream',
    'content-length': String(Math.max(0, end - start + 1)),
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return true;
  }
  const stream = createReadStream(path, { start, end, highWaterMark: 256 * 1024 });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
  return true;
}

/** The HTTP API routes: the signed download and the presigned upload. */
export function otaHttpRoutes(options: {
  service: OtaService;
  signer: UrlSigner;
  credentials: {
    lookup(
      id: string,
    ):
      | { secretAccessKey: string; role: 'admin' | 'read-only' }
      | undefined
      | Promise<{ secretAccessKey: string; role: 'admin' | 'read-only' } | undefined>;
  };
  region: string;
  logger: Logger;
  now?: () => number;
}): HttpHandler[] {
  const { service, signer, logger } = options;
  const now = options.now ?? Date.now;
  const download: HttpHandler = (req, res) =>
    serveDownload(service, signer, req, res, new URL(req.url ?? '/', 'http://api'));

  const upload: HttpHandler = async (req, res) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    if (req.method !== 'PUT' || path !== '/ota/files') return false;
    const query = q < 0 ? '' : raw.slice(q + 1);
    const params = new URLSearchParams(query);
    try {
      if (!params.has('X-Amz-Signature'))
        throw E.OtaUploadInvalid({
          problem: 'the request must carry a SigV4 presigned query (X-Amz-Signature)',
        });
      const signedAt = Date.parse(
        (params.get('X-Amz-Date') ?? '').replace(
          /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
          '$1-$2-$3T$4:$5:$6Z',
        ),
      );
      const expires = Number(params.get('X-Amz-Expires') ?? '900');
      if (!Number.isFinite(signedAt) || now() > signedAt + expires * 1000)
        throw E.OtaUploadInvalid({ problem: 'the presigned upload URL has expired' });
      const verified = await verifySigV4(
        { method: 'PUT', path, query, headers: req.headers, body: Buffer.alloc(0) },
        (id) => options.credentials.lookup(id),
        { now: now(), region: options.region },
      );
      if (verified.key.role !== 'admin')
        throw E.OperationNotPermitted({
          accessKeyId: verified.accessKeyId,
          service: 'iot',
          operation: 'UploadOtaFile',
          role: verified.key.role,
        });
      const sha256 = params.get('sha256') ?? '';
      const size = Number(params.get('size') ?? NaN);
      if (!SHA256_HEX.test(sha256))
        throw E.OtaUploadInvalid({ problem: 'sha256 must be 64 lower-case hex digits' });
      if (!Number.isSafeInteger(size) || size < 0)
        throw E.OtaUploadInvalid({ problem: 'size must be the body length in bytes' });
      const file = await service.upload(req, {
        sha256,
        size,
        ...(params.get('name') ? { name: params.get('name')! } : {}),
        ...(params.get('version') ? { version: params.get('version')! } : {}),
      });
      send(res, 200, { ...file, createdAt: file.createdAt / 1000 });
    } catch (err) {
      // Whatever of the body was not read is not wanted: close the connection instead of draining it.
      res.setHeader('connection', 'close');
      if (isThingsteadError(err)) sendError(res, err);
      else {
        logger.error({ err }, 'firmware upload failed');
        send(res, 500, { message: 'internal error' });
      }
      req.resume();
    }
    return true;
  };
  return [download, upload];
}
