import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ERRORS, ThingsteadError, type ErrorCode } from '../errors/index.js';
import {
  authorizeClientPublish,
  type AuthHooks,
  type AuthzSubject,
  type Broker,
  type ConnectionInfo,
} from '../mqtt/index.js';
import type { ChangeChannel } from '../events/index.js';
import { Counter, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';
import type { ServerTls } from './pki.js';

/**
 * The HTTPS data plane for devices (reference §8.0: `POST /topics/{urlencoded topic}?qos=0|1`, X.509
 * mutual TLS, AWS's port 8443). The client certificate is authenticated by the same hooks as MQTT (registered,
 * ACTIVE, issued by an ACTIVE CA) and each publish is authorized with iot:Publish (and iot:RetainPublish)
 * by the principal's policies. A keep-alive socket keeps its authenticated subject; a certificate leaving
 * ACTIVE closes its sockets at once.
 */

export interface DeviceHttps {
  readonly port: number;
  setTrustedCas(pems: readonly string[]): void;
  close(): Promise<void>;
}

const MAX_BODY = 128 * 1024; // AWS message payload limit (reference §11)

export async function startDeviceHttps(options: {
  host: string;
  port: number;
  tls: ServerTls;
  hooks: AuthHooks;
  broker: Broker;
  logger: Logger;
  metrics: Registry;
  /** Change events: a certificate leaving ACTIVE (in any process) closes its keep-alive sockets. */
  events: ChangeChannel;
}): Promise<DeviceHttps> {
  const { hooks, broker } = options;
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

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://device');
    const m = /^\/topics\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) {
      return fail(res, 'MethodNotAllowed', 'devices may only POST /topics/{topic} on this port', 'not_found');
    }
    let topic: string;
    try {
      topic = decodeURIComponent(m[1]!);
    } catch {
      return fail(res, 'InvalidRequest', 'malformed percent-encoding in the topic', 'invalid');
    }
    const qos = Number(url.searchParams.get('qos') ?? '0');
    const retain = url.searchParams.get('retain') === 'true';
    if (qos !== 0 && qos !== 1) return fail(res, 'InvalidRequest', 'qos must be 0 or 1', 'invalid');
    const level: 0 | 1 = qos === 1 ? 1 : 0;
    if (!topic || topic.includes('+') || topic.includes('#')) {
      return fail(res, 'InvalidRequest', `not a topic name: ${topic}`, 'invalid');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        if (size > MAX_BODY)
          return fail(res, 'EntityTooLarge', `payload exceeds ${MAX_BODY} bytes`, 'too_large');
        const socket = req.socket as TLSSocket;
        let pending = subjects.get(socket);
        if (!pending) subjects.set(socket, (pending = authenticate(socket)));
        const subject = await pending.catch(
          (err: unknown) => `authentication failed: ${(err as Error).message}`,
        );
        if (typeof subject === 'string') {
          warn({ remote: socket.remoteAddress, reason: subject }, 'device HTTPS request refused');
          return fail(res, 'Unauthorized', subject, 'unauthenticated');
        }
        // The same checks as an MQTT PUBLISH (no broker event topics, iot:Publish, iot:RetainPublish).
        if (!authorizeClientPublish(hooks, subject, topic, retain))
          return fail(res, 'Forbidden', `not authorized to publish to ${topic}`, 'forbidden');
        const message = { topic, payload: Buffer.concat(chunks), qos: level, retain };
        const publisher = { clientId: subject.clientId, principal: subject.principal };
        // QoS 1 and retained: answer 200 only once what the publish stored is written.
        if (qos > 0 || retain) await broker.publishDurably(message, publisher);
        else broker.publish(message, publisher);
        requests.inc({ outcome: 'ok' });
        send(res, 200, { message: 'OK', traceId: randomUUID() });
      })().catch((err: unknown) => {
        // A refusal the platform names (store unavailable, retained quota) goes to the device as it is.
        if (err instanceof ThingsteadError) return fail(res, err.code, err.message, 'error');
        log.error({ err }, 'device HTTPS handler failed');
        fail(res, 'InternalFailure', 'internal failure', 'error');
      });
    });
  };

  const server: Server = createServer(secure(), handler);
  server.on('tlsClientError', (err) => warn({ error: err.message }, 'device HTTPS handshake failed'));
  const unsubscribe = options.events.subscribe(['certificate'], (change) => {
    if (change.kind !== 'certificate' || change.status === 'ACTIVE') return;
    for (const s of byCert.get(change.certificateId) ?? []) s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setTrustedCas(pems) {
      trusted = pems;
      server.setSecureContext(secure());
    },
    close() {
      unsubscribe();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
