/**
 * The console's calls to the platform. Everything goes through the platform's own APIs with the session
 * cookie (the server resolves it to the signed-in access key, so the API's authorization applies as for
 * the AWS CLI): `aws()` calls an AWS-compatible operation, naming its API family in x-thingstead-service,
 * with the CSRF token; `consoleGet()` reads the console's own endpoints. Errors carry the API's exception
 * name and message, which the pages show as they are.
 */

export type Service = 'iot' | 'iotdata' | 'iot-jobs-data';

export interface SessionInfo {
  readonly accessKeyId: string;
  readonly name: string;
  readonly role: 'admin' | 'read-only';
  readonly expiresAt: number;
  readonly csrf: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The AWS exception name (x-amzn-ErrorType), e.g. AccessDeniedException. */
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** The CSRF token: from its readable cookie at load (so the first API call needs no round trip), then the session. */
let csrf = /(?:^|;\s*)thingstead_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';

/** True when this browser holds a session's CSRF cookie (it may still have expired: the API will say). */
export const probablySignedIn = () => csrf !== '';
let onExpired: () => void = () => undefined;

export function setSession(s: SessionInfo | null): void {
  csrf = s?.csrf ?? '';
}

/** Called when a request finds the session gone (expired or signed out elsewhere). */
export function onSessionExpired(handler: () => void): void {
  onExpired = handler;
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { message: text };
  }
  if (!res.ok) {
    const type = (res.headers.get('x-amzn-errortype') ?? String(res.status)).split(':')[0]!;
    const err = new ApiError(res.status, type, body.message ?? body.Message ?? res.statusText);
    if (res.status === 401 && type === 'UnauthorizedException' && /session/.test(err.message)) onExpired();
    throw err;
  }
  return body as T;
}

const query = (q: Record<string, string | number | boolean | undefined> = {}) => {
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
};

/** Encode one path label. */
export const seg = (s: string) => encodeURIComponent(s);

/**
 * Call an AWS-compatible operation with the session.
 * @example await aws('iot', 'POST', '/indices/search', { body: { queryString: 'thingName:*' } })
 */
export async function aws<T = any>(
  service: Service,
  method: string,
  path: string,
  o: { query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { 'x-thingstead-service': service, 'x-thingstead-csrf': csrf };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path + query(o.query), {
    method,
    headers,
    credentials: 'same-origin',
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
  });
  return parse<T>(res);
}

export async function consoleGet<T = any>(
  path: string,
  q?: Record<string, string | number | boolean | undefined>,
): Promise<T> {
  return parse<T>(await fetch(`/console/api/${path}${query(q)}`, { credentials: 'same-origin' }));
}

export async function consolePost<T = any>(path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(`/console/api/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-thingstead-csrf': csrf },
    credentials: 'same-origin',
    body: JSON.stringify(body),
  });
  return parse<T>(res);
}

/**
 * The live feed (Server-Sent Events): the overview and/or the points of series. EventSource reconnects by
 * itself; `onState` tells the page whether the feed is up.
 */
export function live(
  sub: { overview?: boolean; series?: Array<[string, string]> },
  handlers: {
    overview?: (o: any) => void;
    points?: (p: { thing: string; metric: string; points: Array<[number, number | string]> }) => void;
    onState?: (up: boolean) => void;
  },
): () => void {
  const q = query({
    overview: sub.overview ? 1 : undefined,
    series: sub.series?.length ? JSON.stringify(sub.series) : undefined,
  });
  const es = new EventSource(`/console/api/live${q}`);
  es.addEventListener('ready', () => handlers.onState?.(true));
  es.addEventListener('error', () => handlers.onState?.(false));
  es.addEventListener('overview', (e) => handlers.overview?.(JSON.parse(e.data)));
  es.addEventListener('points', (e) => handlers.points?.(JSON.parse(e.data)));
  return () => es.close();
}

/** Connect to the broker over WebSocket as the signed-in key (a URL presigned by the server per connect). */
export async function connectMqtt(): Promise<import('mqtt').MqttClient> {
  const { default: mqtt } = await import('mqtt');
  const first = await consolePost<{ url: string }>('mqtt-url');
  let url = first.url;
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId: `console-${Math.random().toString(36).slice(2, 10)}`,
    reconnectPeriod: 3000,
    connectTimeout: 10_000,
    // Each reconnect needs a fresh presigned URL (they are valid for a minute).
    transformWsUrl: () => url,
  });
  client.on('close', () => {
    consolePost<{ url: string }>('mqtt-url').then(
      (r) => (url = r.url),
      () => client.end(true),
    );
  });
  return client;
}

export const fmtTime = (ms: number | undefined | null) =>
  ms === undefined || ms === null ? '—' : new Date(ms).toLocaleString();
export const fmtAgo = (ms: number) => {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
};
/** AWS timestamps arrive as epoch seconds. */
export const awsTime = (v: number | string | undefined) =>
  v === undefined ? undefined : typeof v === 'number' ? v * 1000 : Date.parse(v);
