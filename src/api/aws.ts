import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { E, isThingsteadError, type ThingsteadError } from '../errors/index.js';
import { verifySigV4 } from '../sigv4/index.js';
import { DEFAULT_MAX_JSON_DEPTH, parseJsonBounded } from '../json/index.js';
import { Counter, Histogram, type Logger, type Registry } from '../observability/index.js';
import type { AwsOperation, AwsRequest, AwsService, RawResponse } from './operations.js';
import type { HttpHandler } from './server.js';
import { validateInput } from './validation.js';

/**
 * The AWS-compatible HTTP dispatcher (restJson1 + SigV4, reference §2, §6, §7). Every context contributes a
 * list of `AwsOperation`s; this module routes by (signing service, method, path template), authenticates,
 * binds and validates input, and writes AWS-shaped responses and errors.
 *
 * Contract:
 * - A request whose method and path match no operation of any service is not handled (returns false), so
 *   /healthz, /metrics and the console mounted elsewhere keep working unauthenticated.
 * - A matching request must carry a valid SigV4 signature; the signing name in the credential scope picks
 *   the API family (`iotdevicegateway` is an alias of `iotdata`, reference §1).
 * - Errors: status from the catalog, `x-amzn-ErrorType: <AwsName>`, body `{"message": ..., ...extra}`.
 * - Success: 200 with the handler's JSON; Date values are written as epoch seconds (reference §12.1).
 */

export interface AwsApiKey {
  readonly secretAccessKey: string;
  readonly role: 'admin' | 'read-only';
}

export interface AwsApiOptions {
  readonly operations: readonly AwsOperation[];
  /** Access-key lookup for SigV4 (the credential store's `lookup`). */
  readonly credentials: {
    lookup(accessKeyId: string): Promise<AwsApiKey | undefined> | AwsApiKey | undefined;
  };
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Request body cap in bytes (default 1 MiB; the platform passes `limits.maxApiBodyBytes`). */
  readonly maxBodyBytes?: number;
  /** JSON body nesting cap (default DEFAULT_MAX_JSON_DEPTH; the platform passes `limits.maxJsonDepth`). */
  readonly maxJsonDepth?: number;
  /** The platform's region: a signature scoped to another region is refused (reference §7.2). */
  readonly region?: string;
  /**
   * Answer SigV4-signed requests that match no operation with 404 UnknownOperationException (default true);
   * false leaves them to later handlers.
   */
  readonly answerUnknown?: boolean;
  /** Clock for SigV4 skew checks (tests). */
  readonly now?: () => number;
  /**
   * The web console's session-cookie authentication (src/console), tried for requests that carry no SigV4
   * signature. It resolves the request to the access key the session was signed in with, so the caller is
   * the same principal with the same role as a SigV4 request signed with that key, and the read-only check
   * below applies unchanged; `service` is the API family the request names (what a signature's credential
   * scope would say). Returns undefined when the request has no session (SigV4 then answers as usual);
   * throws a ThingsteadError to refuse (expired session, missing CSRF token, cross-origin request).
   */
  readonly session?: (req: IncomingMessage) => Promise<SessionCaller | undefined>;
}

/** A request authenticated by a console session: the access key it was signed in with. */
export interface SessionCaller {
  readonly accessKeyId: string;
  readonly role: 'admin' | 'read-only';
  /** The API family (a signing name: iot, iotdata, iot-jobs-data). */
  readonly service: string;
}

interface CompiledRoute {
  readonly op: AwsOperation;
  /** Literal segment, or null for a `{label}` (`greedy`: a last `{label+}`, which takes the rest). */
  readonly segments: ReadonlyArray<{ literal: string | null; label: string | null; greedy?: boolean }>;
  readonly literals: number;
}

/**
 * Signing name -> API family. Older botocore models (AWS CLI v2.9, boto3 1.26 as shipped by Debian) sign the
 * IoT control plane as `execute-api`; current SDKs use `iot` (reference §1).
 */
const SERVICE_ALIASES: Record<string, AwsService> = {
  iot: 'iot',
  'execute-api': 'iot',
  iotdata: 'iotdata',
  iotdevicegateway: 'iotdata',
  'iot-jobs-data': 'iot-jobs-data',
};

function compile(op: AwsOperation): CompiledRoute {
  const segments = op.path
    .split('/')
    .filter(Boolean)
    .map((s) => {
      const m = /^\{(\w+)(\+?)\}$/.exec(s);
      return m ? { literal: null, label: m[1]!, greedy: m[2] === '+' } : { literal: s, label: null };
    });
  return { op, segments, literals: segments.filter((s) => s.literal !== null).length };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw E.MalformedPathSegment({ segment: s });
  }
}

/** Match raw (still-encoded) path segments against a route; labels are decoded per segment (§2). */
function match(route: CompiledRoute, raw: readonly string[]): Record<string, string> | null {
  const greedy = route.segments[route.segments.length - 1]?.greedy === true;
  if (greedy ? raw.length < route.segments.length : route.segments.length !== raw.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const seg = route.segments[i]!;
    if (seg.greedy) {
      params[seg.label!] = raw.slice(i).map(decodeSegment).join('/');
      break;
    }
    const value = decodeSegment(raw[i]!);
    if (seg.literal !== null) {
      if (seg.literal !== value) return null;
    } else params[seg.label!] = value;
  }
  return params;
}

/**
 * Past this many bytes of an oversized body, stop discarding and drop the connection: a client sending
 * without end gets no answer, an ordinary one (a mistaken 50 MB upload) gets its 413.
 */
const MAX_DISCARD_BYTES = 256 * 1024 * 1024;

/**
 * Read a request body of at most `limit` bytes. Past the limit nothing more is buffered: the rest is read
 * and discarded so the client, still sending, can read the 413 that follows (answered with
 * `connection: close`); a body past MAX_DISCARD_BYTES is cut off instead.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const refuse = () => reject(E.BodyTooLarge({ limit }));
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (tooLarge) {
        if (size > MAX_DISCARD_BYTES) {
          req.removeAllListeners('data');
          req.socket.destroy();
        }
        return;
      }
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => (tooLarge ? refuse() : resolve(Buffer.concat(chunks))));
    req.on('close', () => tooLarge && refuse());
    req.on('error', reject);
  });
}

/** JSON with Date values as epoch seconds (restJson1 timestamp default). */
export function toAwsJson(value: unknown): string {
  return JSON.stringify(value, function (this: any, key: string, v: unknown) {
    const original = key === '' ? value : this[key];
    if (original instanceof Date) return original.getTime() / 1000;
    return v;
  });
}

function parseQuery(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decodeSegment(eq < 0 ? part : part.slice(0, eq));
    out[k] = eq < 0 ? '' : decodeSegment(part.slice(eq + 1));
  }
  return out;
}

function bindQuery(op: AwsOperation, query: Record<string, string>, input: Record<string, unknown>): void {
  for (const [member, spec] of Object.entries(op.query ?? {})) {
    const wire = spec.name ?? member;
    const v = query[wire];
    if (v === undefined) continue;
    if (spec.type === 'integer') {
      if (!/^-?\d+$/.test(v))
        throw E.MemberConstraint({ value: v, member, constraint: 'Member must be an integer' });
      input[member] = Number(v);
    } else if (spec.type === 'boolean') {
      if (v !== 'true' && v !== 'false')
        throw E.MemberConstraint({ value: v, member, constraint: 'Member must be true or false' });
      input[member] = v === 'true';
    } else input[member] = v;
  }
}

const isRaw = (r: unknown): r is RawResponse =>
  typeof r === 'object' && r !== null && Buffer.isBuffer((r as RawResponse).raw);

/**
 * Build the HTTP handler serving the given operations.
 * @example http.use(createAwsApi({ operations: [...registryOperations(registry)], credentials, logger, metrics }));
 */
export function createAwsApi(options: AwsApiOptions): HttpHandler {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  // service -> method -> routes, most literal segments first.
  const table = new Map<AwsService, Map<string, CompiledRoute[]>>();
  for (const op of options.operations) {
    let byMethod = table.get(op.service);
    if (!byMethod) table.set(op.service, (byMethod = new Map()));
    const list = byMethod.get(op.method) ?? [];
    if (list.some((r) => r.op.path === op.path))
      throw new Error(`duplicate AWS route ${op.service} ${op.method} ${op.path} (${op.name})`);
    list.push(compile(op));
    list.sort((a, b) => b.literals - a.literals);
    byMethod.set(op.method, list);
  }
  const requests = new Counter({
    name: 'thingstead_api_requests_total',
    help: 'AWS-compatible API requests by operation and outcome (AWS error name or OK).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [options.metrics],
  });
  const duration = new Histogram({
    name: 'thingstead_api_request_seconds',
    help: 'AWS-compatible API request duration by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [options.metrics],
  });

  const find = (service: AwsService, method: string, raw: string[]) => {
    for (const route of table.get(service)?.get(method) ?? []) {
      const params = match(route, raw);
      if (params) return { route, params };
    }
    return undefined;
  };

  const sendError = (res: ServerResponse, requestId: string, err: ThingsteadError) => {
    if (res.headersSent) return;
    res.writeHead(err.spec.status, {
      'content-type': 'application/json',
      'x-amzn-RequestId': requestId,
      'x-amzn-ErrorType': err.spec.awsName,
      date: new Date(now()).toUTCString(),
      // An oversized body's connection is not reused (its rest was discarded, not parsed).
      ...(err.code === 'EntityTooLarge' ? { connection: 'close' } : {}),
    });
    res.end(toAwsJson({ message: err.message, ...err.extra }));
  };

  return async (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    // Empty segments are dropped: a trailing-slash endpoint makes JS send `//things/...` (reference §1).
    const raw = rawPath.split('/').filter(Boolean);
    const method = (req.method ?? 'GET').toUpperCase();
    let candidates: boolean;
    try {
      candidates = [...table.keys()].some((s) => find(s, method, raw) !== undefined);
    } catch {
      candidates = false;
    }
    if (!candidates) {
      // A SigV4-signed request for an operation nobody serves gets an AWS-shaped answer; anything else
      // (console, /healthz, /metrics) is left to the handlers mounted after this one.
      const auth = req.headers.authorization;
      if (
        !(options.answerUnknown ?? true) ||
        typeof auth !== 'string' ||
        !auth.startsWith('AWS4-HMAC-SHA256 ')
      )
        return false;
      res.writeHead(404, {
        'content-type': 'application/json',
        'x-amzn-RequestId': randomUUID(),
        'x-amzn-ErrorType': 'UnknownOperationException',
        date: new Date(now()).toUTCString(),
      });
      res.end(JSON.stringify({ message: `No operation is served at ${method} ${rawPath} on this server.` }));
      requests.inc({ operation: 'unknown', outcome: 'UnknownOperationException' });
      return true;
    }

    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    let opName = 'unknown';
    let outcome = 'OK';
    try {
      const body = await readBody(req, maxBody);
      // An operation served unsigned (its path holds the secret) when the request carries no signature.
      const signed = req.headers.authorization !== undefined || /(^|&)X-Amz-Signature=/i.test(rawQuery);
      // A console session stands in for a signature (same access key, same role); see `session` above.
      const session = signed || !options.session ? undefined : await options.session(req);
      const open = signed || session ? undefined : find('iot', method, raw);
      const verified = session
        ? { service: session.service, accessKeyId: session.accessKeyId, key: { role: session.role } }
        : open?.route.op.unsigned
          ? { service: 'iot', accessKeyId: '', key: { role: 'read-only' as const }, unsigned: true }
          : await verifySigV4(
              { method, path: rawPath, query: rawQuery, headers: req.headers, body },
              (id) => options.credentials.lookup(id),
              { now: now(), ...(options.region ? { region: options.region } : {}) },
            );
      const service = SERVICE_ALIASES[verified.service];
      const found = service ? find(service, method, raw) : undefined;
      if (!found) throw E.NoSuchOperation({ service: verified.service, method, path: rawPath });
      const { route, params } = found;
      const op = route.op;
      opName = op.name;
      if (!op.readOnly && verified.key.role !== 'admin' && !('unsigned' in verified))
        throw E.OperationNotPermitted({
          accessKeyId: verified.accessKeyId,
          service: op.service,
          operation: op.name,
          role: verified.key.role,
        });

      let json: Record<string, any> = {};
      if (!op.rawBody && body.length > 0) {
        try {
          // Depth-checked before parsing: handlers, validation and stores may walk the body recursively.
          json = parseJsonBounded(body, { maxDepth: maxJsonDepth }, 'The request body') as Record<
            string,
            any
          >;
        } catch (err) {
          if (isThingsteadError(err)) throw err;
          throw E.BodyNotJson();
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json)) throw E.BodyNotObject();
      }
      const query = parseQuery(rawQuery);
      const merged: Record<string, unknown> = { ...json };
      bindQuery(op, query, merged);
      for (const [member, header] of Object.entries(op.headers ?? {})) {
        const v = req.headers[header];
        if (v !== undefined) merged[member] = Array.isArray(v) ? v.join(',') : v;
      }
      Object.assign(merged, params);
      const input = op.input ? validateInput(op.input, merged) : merged;
      const request: AwsRequest = {
        params,
        query,
        headers: req.headers,
        body: json,
        rawBody: body,
        caller: { accessKeyId: verified.accessKeyId, role: verified.key.role },
        input,
      };
      const result = await op.handler(request);
      const headers = {
        'x-amzn-RequestId': requestId,
        date: new Date(now()).toUTCString(),
      };
      if (isRaw(result)) {
        res.writeHead(result.status ?? 200, {
          ...headers,
          'content-type': result.contentType ?? 'application/octet-stream',
        });
        res.end(result.raw);
      } else {
        res.writeHead(200, { ...headers, 'content-type': 'application/json' });
        res.end(toAwsJson(result ?? {}));
      }
    } catch (err) {
      let e: ThingsteadError;
      if (isThingsteadError(err)) e = err;
      else {
        logger.error({ err, operation: opName, requestId }, 'internal error in AWS API operation');
        e = E.UnhandledFailure({ requestId });
      }
      outcome = e.spec.awsName;
      if (e.spec.status >= 500) logger.warn({ operation: opName, requestId, error: e.message }, 'API error');
      sendError(res, requestId, e);
    } finally {
      requests.inc({ operation: opName, outcome });
      duration.observe({ operation: opName }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    return true;
  };
}
