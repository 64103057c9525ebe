import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { E, ERRORS, ThingsteadError, type ErrorCode } from '../errors/index.js';
import {
  authorizeClientPublish,
  parseHttpPublish,
  type AuthHooks,
  type HttpPublishLimits,
  type AuthzSubject,
  type Broker,
  type ConnectionInfo,
} from '../mqtt/index.js';
import type { ChangeChannel } from '../events/index.js';
import { Counter, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';
import type { ServerTls } from './pki.js';
import type { DeviceAuth } from './auth-hooks.js';

/**
 * The HTTPS data plane for devices (reference §8.0: `POST /topics/{urlencoded topic}?qos=0|1`, X.509
 * mutual TLS, AWS's port 8443). The client certificate is authenticated by the same hooks as MQTT (registered,
 * ACTIVE, issued by an ACTIVE CA) and each publish is authorized with iot:Publish (and iot:RetainPublish)
 * by the principal's policies. A keep-alive socket keeps its authenticated subject; a certificate leaving
 * ACTIVE closes its sockets at once.
 */

/** What a device route is given once the request is authenticated and its body read (within the limit). */
export interface DeviceRouteContext {
  /** The authenticated device (its certificate principal; clientId is the attached thing's name). */
  readonly subject: AuthzSubject;
  /** The whole request body (at most the device HTTPS body limit; beyond it the request got 413). */
  readonly body: Buffer;
  /** The request URL, parsed (pathname still percent-encoded, searchParams decoded). */
  readonly url: URL;
  /**
   * An IoT policy decision for this device, through the same hooks and policies as publish; a denial is
   * counted. @example ctx.authorize('iot:GetThingShadow', `arn:aws:iot:${region}:${account}:thing/${name}`)
   */
  authorize(action: string, resourceArn: string): boolean;
  /** Answer with a request id header; an object body is sent as JSON, a Buffer or string as it is. */
  send(status: number, body: Buffer | string | object, headers?: Record<string, string>): void;
}

/**
 * An extra route on the device HTTPS plane (e.g. the shadow's GET/POST/DELETE /things/{thing}/shadow).
 * Routes are tried in order after the built-in `POST /topics/{topic}`; a route returns true when it
 * answered the request, false to pass it on (no route: 405 MethodNotAllowedException). A route that
 * throws a ThingsteadError is answered in AWS's error shape (status, x-amzn-ErrorType, {"message"}); any
 * other throw is a 500 InternalFailureException (logged).
 */
export type DeviceRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: DeviceRouteContext,
) => boolean | Promise<boolean>;

export interface DeviceHttps {
  /** The port listened on; null when `port` was null (served only through `serveTlsSocket`). */
  readonly port: number | null;
  /**
   * Serve requests on a TLS socket whose handshake happened elsewhere (the ALPN port, `x-amzn-http-ca`):
   * the same authentication, routes and limits as the own port. Takes ownership of the socket.
   */
  serveTlsSocket(socket: TLSSocket): void;
  setTrustedCas(pems: readonly string[]): void;
  close(): Promise<void>;
}

/**
 * Metering and publish quotas for device publishes (src/metering's Meter.httpPublish): called once a
 * publish is valid and authorized, before it is routed. Null: admitted and counted as one message; else
 * the reason string of the refusal, naming the limit (the request gets 429 ThrottlingException with it).
 */
export interface HttpPublishMeter {
  httpPublish(
    publisher: Pick<AuthzSubject, 'clientId' | 'principal'>,
    publish: {
      readonly bytes: number;
      readonly bodyBytes: number;
      readonly retain: boolean;
      readonly topic: string;
    },
  ): string | null;
}

export async function startDeviceHttps(options: {
  host: string;
  /** Port to listen on (0: any free one), or null for none (sockets come only through serveTlsSocket). */
  port: number | null;
  tls: ServerTls;
  hooks: AuthHooks & Pick<DeviceAuth, 'authorizeAction'>;
  broker: Broker;
  logger: Logger;
  metrics: Registry;
  /** Change events: a certificate leaving ACTIVE (in any process) closes its keep-alive sockets. */
  events: ChangeChannel;
  /** A publish's limits (config.limits; default AWS's: 128 KB payloads, 256-byte topics, 8 levels). */
  limits?: HttpPublishLimits;
  /** Request body cap for every route (default limits.maxPayloadBytes); beyond it: 413. */
  maxBodyBytes?: number;
  /** Extra routes (see DeviceRoute), tried in order after POST /topics/{topic}. */
  routes?: readonly DeviceRoute[];
  /** Usage metering and publish quotas (absent or null: metering.enabled=false, nothing counted). */
  meter?: HttpPublishMeter | null | undefined;
}): Promise<DeviceHttps> {
  const { hooks, broker } = options;
  const routes = options.routes ?? [];
  const limits = options.limits ?? { maxPayloadBytes: 128 * 1024, maxTopicBytes: 256, maxTopicLevels: 8 };
  const maxBody = options.maxBodyBytes ?? limits.maxPayloadBytes;
  const log = options.logger.child({ ctx: 'device-https' });
  const warn = rateLimitedLog(log);
  const requests = new Counter({
    name: 'thingstead_device_https_requests_total',
    help: 'Device HTTPS data-plane requests, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [options.metrics],
  });
  const subjects = new WeakMap<TLSSocket, Promise<AuthzSubject | string>>();
  const byCert = new Map<string, Set<TLSSocket>>();
  let trusted: readonly string[] = [options.tls.caPem];
  const secure = () => ({
    cert: options.tls.certPem,
    key: options.tls.keyPem,
    ca: [...trusted],
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2' as const,
  });

  const send = (res: ServerResponse, status: number, body: object, errorType?: string) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-amzn-RequestId': randomUUID(),
      ...(errorType ? { 'x-amzn-ErrorType': errorType } : {}),
    });
    res.end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, code: ErrorCode, message: string, outcome: string) => {
    requests.inc({ outcome });
    send(res, ERRORS[code].status, { message }, ERRORS[code].awsName);
  };

  async function authenticate(socket: TLSSocket): Promise<AuthzSubject | string> {
    // Chain trust is decided by the certificate service (registered DER, ACTIVE CA), as on the MQTT port.
    const cert = socket.getPeerX509Certificate();
    if (!cert) return 'a registered, ACTIVE client certificate is required';
    const info: ConnectionInfo = {
      transport: 'tls',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localPort: socket.localPort ?? 0,
      clientCertificate: cert,
    };
    const decision = await hooks.authenticate({
      clientId: '',
      username: undefined,
      password: undefined,
      protocolVersion: 4,
      info,
    });
    if (!decision.ok) return decision.reason;
    const id = decision.principal.id;
    let set = byCert.get(id);
    if (!set) byCert.set(id, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0) byCert.delete(id);
    });
    // HTTPS has no client id; policies see the thing name as iot:ClientId is unavailable (§9.4).
    return { clientId: decision.principal.thingName ?? '', principal: decision.principal, info };
  }

  /** Publish a device's POST /topics/{topic}: the same checks as an MQTT PUBLISH, then the broker. */
  async function publish(
    req: IncomingMessage,
    res: ServerResponse,
    encodedTopic: string,
    ctx: DeviceRouteContext,
  ) {
    let topic: string;
    try {
      topic = decodeURIComponent(encodedTopic);
    } catch {
      throw E.MalformedPathSegment({ segment: encodedTopic });
    }
    // The query parameters and headers of the SigV4 data plane's Publish (reference §4), parsed the same way.
    const { message, bytes } = parseHttpPublish(
      { topic, query: Object.fromEntries(ctx.url.searchParams), headers: req.headers, payload: ctx.body },
      limits,
    );
    const { subject } = ctx;
    // The same checks as an MQTT PUBLISH (no broker event topics, iot:Publish, iot:RetainPublish).
    if (!authorizeClientPublish(hooks, subject, topic, message.retain))
      throw E.DeviceHttpsForbidden({ topic });
    const publisher = { clientId: subject.clientId, principal: subject.principal };
    // Metered and held to the thing's publish quotas as an MQTT PUBLISH is (src/metering), the buckets
    // shared with its MQTT connections; over a quota: 429 ThrottlingException naming the limit (the
    // data plane's throttling answer, reference §6.2), nothing routed.
    const refusal = options.meter?.httpPublish(publisher, {
      bytes,
      bodyBytes: ctx.body.length,
      retain: message.retain,
      topic,
    });
    if (refusal != null) {
      const e = E.QuotaThrottledPublish({ thingName: subject.clientId, reason: refusal });
      return fail(res, e.code, e.message, 'throttled');
    }
    // QoS 1 and retained: answer 200 only once what the publish stored is written.
    if (message.qos > 0 || message.retain) await broker.publishDurably(message, publisher);
    else broker.publish(message, publisher);
    requests.inc({ outcome: 'ok' });
    send(res, 200, { message: 'OK', traceId: randomUUID() });
  }

  async function serve(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const url = new URL(req.url ?? '/', 'https://device');
    const socket = req.socket as TLSSocket;
    let pending = subjects.get(socket);
    if (!pending) subjects.set(socket, (pending = authenticate(socket)));
    const subject = await pending.catch((err: unknown) => `authentication failed: ${(err as Error).message}`);
    if (typeof subject === 'string') {
      warn({ remote: socket.remoteAddress, reason: subject }, 'device HTTPS request refused');
      const e = E.DeviceHttpsUnauthenticated({ reason: subject });
      return fail(res, e.code, e.message, 'unauthenticated');
    }
    const ctx: DeviceRouteContext = {
      subject,
      body,
      url,
      authorize: (action, resourceArn) => {
        try {
          return hooks.authorizeAction(subject, action, resourceArn);
        } catch {
          return false;
        }
      },
      send: (status, payload, headers = {}) => {
        const json = !Buffer.isBuffer(payload) && typeof payload === 'object';
        res.writeHead(status, {
          ...(json ? { 'content-type': 'application/json' } : {}),
          'x-amzn-RequestId': randomUUID(),
          ...headers,
        });
        res.end(json ? JSON.stringify(payload) : payload);
      },
    };
    const m = /^\/topics\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'POST' && m) return publish(req, res, m[1]!, ctx);
    for (const route of routes) {
      if (await route(req, res, ctx)) {
        requests.inc({ outcome: res.statusCode < 400 ? 'ok' : 'error' });
        return;
      }
    }
    return fail(
      res,
      'MethodNotAllowed',
      `${req.method} ${url.pathname} is not served on this port`,
      'not_found',
    );
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxBody) chunks.push(c);
    });
    req.on('end', () => {
      if (size > maxBody) {
        const e = E.DataPlanePayloadTooLarge({ limit: maxBody });
        return fail(res, e.code, e.message, 'too_large');
      }
      serve(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        // A refusal the platform names (store unavailable, retained quota) goes to the device as it is.
        if (err instanceof ThingsteadError)
          return fail(res, err.code, err.message, err.code === 'Forbidden' ? 'forbidden' : 'error');
        log.error({ err }, 'device HTTPS handler failed');
        fail(res, 'InternalFailure', 'internal failure', 'error');
      });
    });
  };

  const unsubscribe = options.events.subscribe(['certificate'], (change) => {
    if (change.kind !== 'certificate' || change.status === 'ACTIVE') return;
    for (const s of byCert.get(change.certificateId) ?? []) s.destroy();
  });
  // TLS sockets negotiated elsewhere (the ALPN port's `x-amzn-http-ca`) are served by a plain HTTP server
  // that never listens: the same handler, over the already-decrypted socket.
  const handedOn: HttpServer = createHttpServer(handler);
  let server: Server | null = null;
  const port = options.port;
  if (port !== null) {
    const https = createServer(secure(), handler);
    https.on('tlsClientError', (err) => warn({ error: err.message }, 'device HTTPS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      https.once('error', reject);
      https.listen(port, options.host, () => {
        https.off('error', reject);
        resolve();
      });
    });
    server = https;
  }
  return {
    port: server ? (server.address() as AddressInfo).port : null,
    serveTlsSocket(socket) {
      handedOn.emit('connection', socket);
    },
    setTrustedCas(pems) {
      trusted = pems;
      server?.setSecureContext(secure());
    },
    async close() {
      unsubscribe();
      handedOn.closeAllConnections();
      if (!server) return;
      const s = server;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
