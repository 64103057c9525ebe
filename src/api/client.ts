import { signRequest, uriEncode } from '../sigv4/index.js';

/**
 * A small SigV4-signing HTTP client for the AWS-compatible API (used by the thingstead CLI; any AWS SDK
 * works the same way). Errors come back as `{ status, name, message }` read the way the SDKs read them
 * (x-amzn-ErrorType header, then body code/__type, reference §6.1).
 */
export interface SignedFetchOptions {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly service?: string;
}

export class AwsApiError extends Error {
  constructor(
    readonly status: number,
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Call one operation: `path` is a template already filled with `encodePath` segments.
 * @example await signedFetch(opts, 'GET', `/things/${encodePath(name)}`, { query: { maxResults: 10 } });
 */
export async function signedFetch(
  options: SignedFetchOptions,
  method: string,
  path: string,
  request: {
    query?: Record<string, string | number | boolean | undefined>;
    body?: unknown;
    headers?: Record<string, string>;
  } = {},
): Promise<any> {
  const url = new URL(options.endpoint);
  const base = url.pathname.replace(/\/+$/, '');
  const query = Object.entries(request.query ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`)
    .join('&');
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(request.body));
  const headers: Record<string, string> = { ...(request.headers ?? {}) };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  const signed = signRequest({
    method,
    host: url.host,
    path: base + path,
    query,
    body,
    headers,
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    region: options.region,
    service: options.service ?? 'iot',
  });
  const { host: _host, ...sendHeaders } = signed;
  const res = await fetch(`${url.origin}${base}${path}${query ? `?${query}` : ''}`, {
    method,
    headers: sendHeaders,
    body: body.length ? body : undefined,
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, any>) : {};
  if (res.status >= 300) {
    const name = res.headers.get('x-amzn-errortype') ?? json.code ?? json.__type ?? String(res.status);
    throw new AwsApiError(
      res.status,
      String(name).split(':')[0]!.split('#').pop()!,
      json.message ?? json.Message ?? text,
    );
  }
  return json;
}

/** Encode one path label the way the SDKs do (reference §2). */
export const encodePath = (label: string) => uriEncode(label);
