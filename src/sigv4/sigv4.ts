import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { E } from '../errors/index.js';

/**
 * Server-side AWS Signature Version 4 verification (reference §7.2; AWS General Reference, "Signature
 * Version 4 signing process"). Written from the documented algorithm; tested against @smithy/signature-v4,
 * the JS SDK v3, boto3 and the AWS CLI.
 *
 * Contract: `verifySigV4` either returns the verified identity or throws a ThingsteadError whose AWS name is
 * what AWS answers for that failure: MissingAuthenticationTokenException (no Authorization header),
 * IncompleteSignature-style problems as InvalidSignatureException, UnrecognizedClientException (unknown key),
 * InvalidSignatureException (mismatch, expired or future date, credential scoped to another region than the
 * one given). The signature comparison is constant time.
 */

export interface SigV4Request {
  readonly method: string;
  /** The raw request target path as received (still percent-encoded), without the query string. */
  readonly path: string;
  /** The raw query string (without '?'), as received. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw body bytes (hashed when x-amz-content-sha256 is absent, as boto3 sends it). */
  readonly body: Buffer;
}

export interface SigV4Key {
  readonly secretAccessKey: string;
}

export interface SigV4Verified<K extends SigV4Key> {
  readonly accessKeyId: string;
  /** The signing name in the credential scope (`iot`, `iotdata`, `iot-jobs-data`, ...): selects the API. */
  readonly service: string;
  readonly region: string;
  readonly key: K;
}

/** Clock skew accepted between the request's x-amz-date and server time (AWS: 5 minutes). */
export const MAX_SKEW_MS = 5 * 60 * 1000;

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding of everything but the unreserved set `A-Z a-z 0-9 - . _ ~` (reference §2). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/** Percent-decode without treating '+' as space; malformed escapes are kept literally. */
function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Canonical URI (reference §7.2 step 2): split the raw path, drop empty and '.' segments (pop on '..'),
 * re-encode each raw segment once more (the double encoding of non-S3 services), keep a trailing slash.
 */
export function canonicalUri(rawPath: string): string {
  const out: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      out.pop();
      continue;
    }
    out.push(uriEncode(seg));
  }
  const trailing = rawPath.length > 1 && rawPath.endsWith('/') && out.length > 0 ? '/' : '';
  return '/' + out.join('/') + trailing;
}

/** Canonical query (step 3): decoded pairs re-encoded, sorted by key then value, `k=` for no value. */
export function canonicalQuery(rawQuery: string, exclude: ReadonlySet<string> = new Set()): string {
  if (!rawQuery) return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : safeDecode(part.slice(eq + 1));
    if (exclude.has(k)) continue;
    pairs.push([uriEncode(k), uriEncode(v)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** The signing key chain of step 8: kDate, kRegion, kService, kSigning. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
}

/** `YYYYMMDDTHHMMSSZ` -> epoch ms, or NaN. */
function parseAmzDate(v: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return NaN;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

const amzDate = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

const mismatch = () => E.SignatureMismatch();

interface ParsedAuth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string;
  signature: string;
  amzDate: string;
  /** Query-string (presigned) signature: X-Amz-* parameters are excluded from the canonical query. */
  presigned: boolean;
}

function parseAuth(req: SigV4Request): ParsedAuth {
  const auth = headerValue(req.headers, 'authorization');
  if (auth === undefined) {
    // Presigned form (MQTT over WebSocket, reference §7.3).
    const q = new URLSearchParams(req.query.replace(/\+/g, '%2B'));
    const credential = q.get('X-Amz-Credential');
    if (q.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256' && credential) {
      const scope = credential.split('/');
      if (scope.length !== 5 || scope[4] !== 'aws4_request') throw E.SigV4PresignedScope({ credential });
      return {
        accessKeyId: scope[0]!,
        date: scope[1]!,
        region: scope[2]!,
        service: scope[3]!,
        signedHeaders: q.get('X-Amz-SignedHeaders') ?? '',
        signature: q.get('X-Amz-Signature') ?? '',
        amzDate: q.get('X-Amz-Date') ?? '',
        presigned: true,
      };
    }
    throw E.SigV4MissingToken();
  }
  if (!auth.startsWith('AWS4-HMAC-SHA256 ')) throw E.SigV4Algorithm({ algorithm: auth.split(' ')[0]! });
  const fields: Record<string, string> = {};
  for (const part of auth.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((k) => !fields[k]);
  if (missing.length)
    throw E.SigV4MissingParameters({
      missing: missing.map((k) => E.SigV4MissingParameter.describe({ parameter: k }).message).join(' '),
      authorization: auth.slice(0, 40),
    });
  const scope = fields.Credential!.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request')
    throw E.SigV4Scope({ credential: fields.Credential! });
  const date = headerValue(req.headers, 'x-amz-date') ?? '';
  return {
    accessKeyId: scope[0]!,
    date: scope[1]!,
    region: scope[2]!,
    service: scope[3]!,
    signedHeaders: fields.SignedHeaders!,
    signature: fields.Signature!,
    amzDate: date,
    presigned: false,
  };
}

export interface SigV4VerifyOptions {
  /** Server time in epoch ms (tests); default Date.now(). */
  readonly now?: number;
  /**
   * The platform's region. When set, a credential scope naming another region is refused the way AWS
   * refuses it (InvalidSignatureException, "Credential should be scoped to a valid region"), before any
   * key lookup; when absent, any region is accepted.
   */
  readonly region?: string;
}

/**
 * Verify a SigV4-signed request. `lookup` returns the key record for an access key id (undefined when
 * unknown). The third argument is the options, or (older form) just `now`.
 * @example const { accessKeyId, service, key } = await verifySigV4(req, (id) => keys.get(id), { region: 'us-east-1' });
 */
export async function verifySigV4<K extends SigV4Key>(
  req: SigV4Request,
  lookup: (accessKeyId: string) => K | undefined | Promise<K | undefined>,
  options: number | SigV4VerifyOptions = {},
): Promise<SigV4Verified<K>> {
  const { now = Date.now(), region } = typeof options === 'number' ? { now: options } : options;
  const a = parseAuth(req);
  if (region !== undefined && a.region !== region) throw E.SigV4Region({ region: a.region, served: region });
  // Step 1: x-amz-date present, same day as the scope, within the skew window.
  if (!a.amzDate) throw E.SigV4MissingDate();
  const t = parseAmzDate(a.amzDate);
  if (Number.isNaN(t)) throw E.SigV4DateFormat({ amzDate: a.amzDate });
  if (a.amzDate.slice(0, 8) !== a.date) throw E.SigV4DateScope({ date: a.date, amzDate: a.amzDate });
  if (t < now - MAX_SKEW_MS)
    throw E.SigV4Expired({ amzDate: a.amzDate, earliest: amzDate(now - MAX_SKEW_MS), now: amzDate(now) });
  if (t > now + MAX_SKEW_MS)
    throw E.SigV4NotYetCurrent({ amzDate: a.amzDate, latest: amzDate(now + MAX_SKEW_MS), now: amzDate(now) });
  if (!/^[0-9a-f]{64}$/.test(a.signature)) throw mismatch();

  const key = await lookup(a.accessKeyId);
  if (!key) throw E.SigV4UnknownKey();

  // Step 4: canonical headers; every signed header must be present (step 9).
  const names = a.signedHeaders.split(';');
  if (!names.includes('host')) throw E.SigV4HostNotSigned();
  let canonicalHeaders = '';
  for (const name of names) {
    const value = headerValue(req.headers, name.toLowerCase());
    if (value === undefined) throw E.SigV4SignedHeaderMissing({ header: name });
    canonicalHeaders += `${name}:${value.trim().replace(/\s+/g, ' ')}\n`;
  }

  // Step 5: payload hash; a declared hash must match the body actually received.
  let payloadHash: string;
  if (a.presigned) payloadHash = EMPTY_SHA256;
  else {
    const declared = headerValue(req.headers, 'x-amz-content-sha256');
    const actual = sha256Hex(req.body);
    if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && declared !== actual)
      throw E.SigV4PayloadHash();
    payloadHash = declared ?? actual;
  }

  const exclude = a.presigned ? new Set(['X-Amz-Signature', 'X-Amz-Security-Token']) : new Set<string>();
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query, exclude),
    canonicalHeaders,
    a.signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${a.date}/${a.region}/${a.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', a.amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const expected = createHmac('sha256', signingKey(key.secretAccessKey, a.date, a.region, a.service))
    .update(stringToSign, 'utf8')
    .digest();
  const given = Buffer.from(a.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw mismatch();
  return { accessKeyId: a.accessKeyId, service: a.service, region: a.region, key };
}

/**
 * Sign a request (client side, for the thingstead CLI): returns the headers to send, including
 * Authorization, x-amz-date and x-amz-content-sha256. `path` and `query` are the raw wire forms.
 * @example const h = signRequest({ method: 'GET', host: '127.0.0.1:8080', path: '/things', query: '', body: Buffer.alloc(0), accessKeyId, secretAccessKey, region: 'us-east-1', service: 'iot' });
 */
export function signRequest(r: {
  method: string;
  host: string;
  path: string;
  query: string;
  body: Buffer;
  headers?: Record<string, string>;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
  now?: number;
}): Record<string, string> {
  const date = amzDate(r.now ?? Date.now());
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    host: r.host,
    'x-amz-date': date,
    'x-amz-content-sha256': sha256Hex(r.body),
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [
    r.method.toUpperCase(),
    canonicalUri(r.path),
    canonicalQuery(r.query),
    canonicalHeaders,
    signedHeaders,
    headers['x-amz-content-sha256'],
  ].join('\n');
  const scope = `${date.slice(0, 8)}/${r.region}/${r.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(r.secretAccessKey, date.slice(0, 8), r.region, r.service))
    .update(stringToSign, 'utf8')
    .digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${r.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
