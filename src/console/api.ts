import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpHandler } from '../api/index.js';
import { E, isThingsteadError, type ThingsteadError } from '../errors/index.js';
import { Counter, type Logger, type Registry } from '../observability/index.js';
import { compileQuery, parseQuery, type FieldProvider, type FleetIndex } from '../registry/index.js';
import { AGGREGATES, parseInstant, type Aggregate, type Timeseries } from '../timeseries/index.js';
import type { LiveHub, LiveSubscription } from './live.js';
import type { OverviewReader } from './overview.js';
import type { PresenceLog } from './presence.js';
import { presignMqttUrl } from './presign.js';
import {
  checkOrigin,
  cookieValue,
  csrfCookie,
  isSecureRequest,
  SESSION_COOKIE,
  sessionCookie,
  type Session,
  type SessionKey,
  type SessionStore,
} from './sessions.js';
import { SECURITY_HEADERS } from './static.js';

/**
 * The console's own JSON endpoints, under /console/api/ (everything else the console shows comes from the
 * AWS-compatible APIs, called with the session; see `session` in src/api/aws.ts):
 *
 * - POST /console/api/sign-in {accessKeyId, secretAccessKey}  -> session cookie + {session}
 * - POST /console/api/sign-out                                 (CSRF token required)
 * - GET  /console/api/session                                  who is signed in, the CSRF token, the platform
 * - GET  /console/api/overview                                 fleet overview (see overview.ts)
 * - GET  /console/api/things/count?q=<fleet query>             how many things match (for paging)
 * - GET  /console/api/things/{thing}/connections               connection history (lifecycle events)
 * - GET  /console/api/telemetry?metric=&thing=|group=&from=&to=&width=&agg=
 *        downsampled on the server: at most about two points per pixel of `width`
 * - GET  /console/api/live?overview=1&series=[["thing","metric"],...]   Server-Sent Events (live.ts)
 * - POST /console/api/mqtt-url                                 a presigned MQTT-over-WebSocket URL for the
 *        session's access key (the topic viewer connects with the broker's own authorization)
 *
 * All of them need a signed-in session; reads change nothing, so read-only keys may call every GET; POSTs
 * carry the CSRF token. Errors have the AWS API's shape: status, `x-amzn-ErrorType`, `{"message"}`.
 */
export interface ConsoleApiDeps {
  readonly sessions: SessionStore;
  readonly keys: { lookup(accessKeyId: string): Promise<SessionKey | undefined> };
  readonly index: FleetIndex;
  readonly isConnected: (thingName: string) => boolean;
  readonly fieldProviders: readonly FieldProvider[];
  readonly timeseries: Timeseries;
  readonly overview: OverviewReader;
  readonly presence: PresenceLog;
  readonly live: LiveHub;
  readonly region: string;
  readonly accountId: string;
  readonly ttlMs: number;
  readonly metrics: Registry;
  readonly logger: Logger;
}

const MAX_BODY = 8 * 1024;
const MAX_LIVE_SERIES = 24;

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: ThingsteadError) {
  if (res.headersSent) return res.end();
  sendJson(
    res,
    err.spec.status,
    { message: err.message, ...err.extra },
    { 'x-amzn-ErrorType': err.spec.awsName },
  );
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(E.BodyTooLarge({ limit: MAX_BODY }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (chunks.length === 0) return resolve({});
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return reject(E.BodyNotObject());
        resolve(v as Record<string, unknown>);
      } catch {
        reject(E.BodyNotJson());
      }
    });
    req.on('error', reject);
  });
}

const publicSession = (s: Session) => ({
  accessKeyId: s.accessKeyId,
  name: s.name,
  role: s.role,
  expiresAt: s.expiresAt,
  csrf: s.csrf,
});

/** Parse `width`: an integer number of chart pixels. */
export function chartWidth(text: string | null): number {
  const n = Number(text);
  if (text === null || !/^\d+$/.test(text) || n < 1 || n > 10_000)
    throw E.ConsoleChartWidth({ width: text ?? '' });
  return n;
}

/**
 * The bucket width for a chart of `width` pixels over [from, to): at most two buckets per pixel, rounded up
 * to a whole millisecond (so a query never returns more than 2 * width + 1 points per series).
 */
export function stepFor(from: number, to: number, width: number): number {
  return Math.max(1, Math.ceil((to - from) / (2 * width)));
}

export function consoleApi(d: ConsoleApiDeps): HttpHandler {
  const requests = new Counter({
    name: 'thingstead_console_requests_total',
    help: 'Console endpoint requests by endpoint and outcome (AWS error name or OK).',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [d.metrics],
  });

  const requireSession = async (req: IncomingMessage, csrf: boolean): Promise<Session> => {
    const s = await d.sessions.fromRequest(req);
    if (!s) throw E.ConsoleSessionExpired();
    if (csrf) d.sessions.checkCsrf(req, s);
    else checkOrigin(req);
    return s;
  };

  type Route = (req: IncomingMessage, res: ServerResponse, url: URL, match: string[]) => Promise<void>;
  const routes: Array<{ method: string; pattern: RegExp; name: string; run: Route }> = [
    {
      method: 'POST',
      pattern: /^\/console\/api\/sign-in$/,
      name: 'sign-in',
      async run(req, res) {
        // Login CSRF: same-origin only, and a JSON body (a cross-site form cannot send one without CORS).
        checkOrigin(req);
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
          throw E.ConsoleBadRequest({
            problem: 'sign-in takes a JSON body (content-type: application/json)',
          });
        const body = await readJson(req);
        const id = typeof body.accessKeyId === 'string' ? body.accessKeyId.trim() : '';
        const secret = typeof body.secretAccessKey === 'string' ? body.secretAccessKey.trim() : '';
        if (!id || !secret)
          throw E.ConsoleBadRequest({
            problem: 'give accessKeyId and secretAccessKey (see data/credentials)',
          });
        const { token, session } = await d.sessions.signIn(id, secret, req.socket.remoteAddress ?? '');
        sendJson(
          res,
          200,
          { session: publicSession(session) },
          {
            'set-cookie': [
              sessionCookie(token, d.ttlMs / 1000, isSecureRequest(req)),
              csrfCookie(session.csrf, d.ttlMs / 1000, isSecureRequest(req)),
            ],
          },
        );
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/sign-out$/,
      name: 'sign-out',
      async run(req, res) {
        const token = cookieValue(req.headers.cookie, SESSION_COOKIE);
        const session = await d.sessions.fromRequest(req).catch(() => undefined);
        if (session) d.sessions.checkCsrf(req, session);
        if (token && session) await d.sessions.signOut(token);
        sendJson(
          res,
          200,
          { signedOut: true },
          {
            'set-cookie': [
              sessionCookie('', 0, isSecureRequest(req)),
              csrfCookie('', 0, isSecureRequest(req)),
            ],
          },
        );
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/session$/,
      name: 'session',
      async run(req, res) {
        const s = await requireSession(req, false);
        sendJson(res, 200, {
          session: publicSession(s),
          platform: { region: d.region, accountId: d.accountId, mqttPath: '/mqtt', now: Date.now() },
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/overview$/,
      name: 'overview',
      async run(req, res) {
        await requireSession(req, false);
        sendJson(res, 200, await d.overview.read());
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/things\/count$/,
      name: 'things-count',
      async run(req, res, url) {
        await requireSession(req, false);
        const q = url.searchParams.get('q')?.trim() || 'thingName:*';
        const predicate = compileQuery(parseQuery(q), {
          isConnected: d.isConnected,
          providers: d.fieldProviders,
        });
        const started = performance.now();
        const count = d.index.search(predicate, undefined, Number.MAX_SAFE_INTEGER).things.length;
        sendJson(res, 200, { queryString: q, count, fleet: d.index.size, ms: performance.now() - started });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/things\/([^/]+)\/connections$/,
      name: 'connections',
      async run(req, res, _url, m) {
        await requireSession(req, false);
        const thing = decodeURIComponent(m[0]!);
        sendJson(res, 200, {
          thingName: thing,
          connected: d.isConnected(thing),
          events: d.presence.history(thing),
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/telemetry$/,
      name: 'telemetry',
      async run(req, res, url) {
        await requireSession(req, false);
        const p = url.searchParams;
        const metric = p.get('metric');
        if (!metric) throw E.MissingParameter({ name: 'metric' });
        const width = chartWidth(p.get('width'));
        const now = Date.now();
        const to = parseInstant(p.get('to') ?? undefined, now, now, 'to');
        const from = parseInstant(p.get('from') ?? undefined, to - 3_600_000, now, 'from');
        if (from >= to) throw E.TsRange();
        const agg = (p.get('agg') ?? 'avg') as Aggregate;
        if (!AGGREGATES.includes(agg)) throw E.TsAggregate({ aggregates: AGGREGATES });
        const group = p.get('group');
        const thing = p.get('thing');
        let things: string[];
        if (group) {
          if (!d.timeseries.resolveGroup) throw E.TsNoGroups();
          things = await d.timeseries.resolveGroup(group);
        } else if (thing) things = [thing];
        else throw E.ConsoleBadRequest({ problem: 'give thing=<thing name> or group=<thing group name>' });
        const stepMs = stepFor(from, to, width);
        const series =
          things.length === 0
            ? []
            : await d.timeseries.downsample(
                { things, metric, from, to, stepMs, agg, groupBy: group ? 'all' : 'thing' },
                group ?? 'all',
              );
        sendJson(res, 200, {
          metric,
          from,
          to,
          step: stepMs,
          agg,
          width,
          series: series.map((s) => ({ key: s.key, points: s.points.map((x) => [x.ts, x.value]) })),
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/live$/,
      name: 'live',
      async run(req, res, url) {
        await requireSession(req, false);
        const sub = liveSubscription(url);
        if (!d.live.admit()) throw E.ConsoleLiveLimit({ limit: d.live.size });
        d.live.open(req, res, sub);
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/mqtt-url$/,
      name: 'mqtt-url',
      async run(req, res) {
        const s = await requireSession(req, true);
        const key = await d.keys.lookup(s.accessKeyId);
        if (!key) throw E.ConsoleSessionExpired();
        const expiresSeconds = 60;
        const url = presignMqttUrl({
          scheme: isSecureRequest(req) ? 'wss' : 'ws',
          host: req.headers.host ?? '127.0.0.1',
          path: '/mqtt',
          region: d.region,
          accessKeyId: key.accessKeyId,
          secretAccessKey: key.secretAccessKey,
          expiresSeconds,
        });
        sendJson(res, 200, { url, expiresAt: Date.now() + expiresSeconds * 1000, role: s.role });
      },
    },
  ];

  return async (req, res) => {
    const raw = req.url ?? '/';
    if (!raw.startsWith('/console/api/')) return false;
    const url = new URL(raw, 'http://console');
    const route = routes.find((r) => r.pattern.test(url.pathname));
    let name = 'unknown';
    let outcome = 'OK';
    try {
      if (!route) throw E.ConsoleBadRequest({ problem: `no console endpoint ${url.pathname}` });
      name = route.name;
      if (req.method !== route.method)
        throw E.ConsoleBadRequest({ problem: `${url.pathname} takes ${route.method}, not ${req.method}` });
      await route.run(req, res, url, route.pattern.exec(url.pathname)!.slice(1));
    } catch (err) {
      let e: ThingsteadError;
      if (isThingsteadError(err)) e = err;
      else {
        d.logger.error({ err, endpoint: name }, 'console endpoint failed');
        e = E.UnhandledFailure({ requestId: 'console' });
      }
      outcome = e.spec.awsName;
      sendError(res, e);
    } finally {
      requests.inc({ endpoint: name, outcome });
    }
    return true;
  };
}

function liveSubscription(url: URL): LiveSubscription {
  const overview = url.searchParams.get('overview') === '1';
  const text = url.searchParams.get('series');
  let series: Array<{ thing: string; metric: string }> = [];
  if (text) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (
      !Array.isArray(parsed) ||
      parsed.length > MAX_LIVE_SERIES ||
      !parsed.every(
        (p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string',
      )
    )
      throw E.ConsoleBadRequest({
        problem: `series must be a JSON list of at most ${MAX_LIVE_SERIES} [thing, metric] pairs`,
      });
    series = (parsed as Array<[string, string]>).map(([thing, metric]) => ({ thing, metric }));
  }
  return { overview, series };
}
