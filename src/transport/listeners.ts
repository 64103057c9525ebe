import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Config } from '../config/index.js';
import type { ServerTls } from '../identity/index.js';
import type { Broker } from '../mqtt/index.js';
import { Counter, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Listeners {
  readonly mqtt: Endpoint | null;
  readonly mqtts: Endpoint | null;
  /** MQTT over WebSocket with TLS (`wss://host:port/mqtt`, server certificate only), when `mqtt.wssPort` is set. */
  readonly wss: Endpoint | null;
  /** The ALPN port (MQTT mutual TLS, device HTTPS and WSS on one port, as AWS's 443), when `mqtt.alpnPort` is set. */
  readonly alpn: Endpoint | null;
  /** Path on the HTTP port serving MQTT over WebSocket. */
  readonly wsPath: string;
  /** Replace the CA certificates client certificates may chain to (platform CA + registered CAs). */
  setTrustedCas(pems: readonly string[]): void;
  close(): Promise<void>;
}

function listen(server: NetServer, host: string, port: number): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      resolve({ host, port: addr.port });
    });
  });
}

/**
 * Stop accepting: the listening socket is closed (the port is free) at once. Connections already handed to
 * the broker are not waited for: the broker closes them when it stops (after the listeners), so waiting
 * here for them to end would wait for clients to leave on their own.
 */
function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close();
    resolve();
  });
}

/** ALPN protocol names on the ALPN port (reference §8.0, §7.4). */
export const ALPN = {
  /** MQTT over mutual TLS (AWS 443). */
  mqtt: 'x-amzn-mqtt-ca',
  /** The device HTTPS data plane over mutual TLS (AWS 443). */
  http: 'x-amzn-http-ca',
  /** MQTT over WebSocket (the Device SDK v2 sends http/1.1, or no ALPN at all). */
  ws: 'http/1.1',
} as const;

/**
 * Start the MQTT listeners named in config and attach MQTT over WebSocket to the HTTP server.
 * Plain TCP is off unless `mqtt.port` is set; TLS requests (but does not require) a client certificate.
 * `mqtt.wssPort` serves MQTT over WebSocket with TLS at /mqtt (server certificate only: a WSS client
 * authenticates with a SigV4 presigned URL, reference §7.3). `mqtt.alpnPort` is AWS's 443 (reference §8.0):
 * the TLS handshake's ALPN picks MQTT over mutual TLS (`x-amzn-mqtt-ca`), the device HTTPS plane
 * (`x-amzn-http-ca`, handed to `deviceHttps`) or MQTT over WebSocket (`http/1.1` or none).
 */
export async function startListeners(options: {
  config: Config;
  tls: ServerTls;
  broker: Broker;
  http: HttpServer;
  logger: Logger;
  metrics: Registry;
  /** Serves a TLS socket whose ALPN is `x-amzn-http-ca` (the device HTTPS plane); without it they are refused. */
  deviceHttps?: ((socket: TLSSocket) => void) | undefined;
}): Promise<Listeners> {
  const { config, broker, logger } = options;
  const log = logger.child({ ctx: 'transport' });
  const accepted = new Counter({
    name: 'thingstead_transport_connections_accepted_total',
    help: 'Connections accepted, by transport.',
    labelNames: ['transport'],
    registers: [options.metrics],
  });
  const refused = new Counter({
    name: 'thingstead_transport_connections_refused_total',
    help: 'Connections refused before MQTT, by transport and reason.',
    labelNames: ['transport', 'reason'],
    registers: [options.metrics],
  });
  const warn = rateLimitedLog(log);
  const servers: NetServer[] = [];

  const onSocket = (transport: 'tcp' | 'tls') => (socket: Socket) => {
    socket.setNoDelay(true);
    accepted.inc({ transport });
    // Any presented client certificate is handed on, whether or not it chains to a trusted CA: the TLS
    // handshake has already proved possession of its private key, and identity decides (a certificate
    // registered without a CA is matched by its exact DER; anything else must chain to an ACTIVE CA).
    const cert =
      transport === 'tls' ? ((socket as TLSSocket).getPeerX509Certificate() ?? undefined) : undefined;
    broker.handleConnection(socket, {
      transport,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localPort: socket.localPort ?? 0,
      clientCertificate: cert,
    });
  };

  let mqtt: Endpoint | null = null;
  if (config.mqtt.port !== null) {
    const server = createTcpServer({ noDelay: true }, onSocket('tcp'));
    server.maxConnections = config.limits.maxConnections;
    servers.push(server);
    mqtt = await listen(server, config.mqtt.host, config.mqtt.port);
  }

  let tlsServer: TlsServer | null = null;
  let mqtts: Endpoint | null = null;
  let trusted: readonly string[] = [options.tls.caPem];
  const secureOptions = () => ({
    cert: options.tls.certPem,
    key: options.tls.keyPem,
    ca: [...trusted],
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2' as const,
  });
  if (config.mqtt.tlsPort !== null) {
    tlsServer = createTlsServer(secureOptions(), onSocket('tls'));
    tlsServer.maxConnections = config.limits.maxConnections;
    tlsServer.on('tlsClientError', (err, socket) => {
      refused.inc({ transport: 'tls', reason: 'handshake' });
      warn({ remote: socket.remoteAddress, error: err.message }, 'TLS handshake failed');
    });
    servers.push(tlsServer);
    mqtts = await listen(tlsServer, config.mqtt.tlsHost, config.mqtt.tlsPort);
  }

  // MQTT over WebSocket: subprotocol `mqtt` (MQTT 5 spec §6), also accepting `mqttv3.1` from old clients.
  const wsPath = '/mqtt';
  const wsServer = new WebSocketServer({
    noServer: true,
    maxPayload: config.limits.maxPacketBytes + 16,
    perMessageDeflate: false,
    handleProtocols: (protocols) =>
      protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
  });
  /** `others`: other contexts serve upgrade paths on this server too (and answer unknown paths). */
  const serveUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, others: boolean) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== wsPath) {
      if (others) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wsServer.handleUpgrade(req, socket, head, (ws) => {
      accepted.inc({ transport: 'ws' });
      const net = req.socket;
      const stream = createWebSocketStream(ws, { allowHalfOpen: false });
      stream.on('error', () => undefined);
      broker.handleConnection(stream, {
        transport: 'encrypted' in net && net.encrypted ? 'wss' : 'ws',
        remoteAddress: net.remoteAddress ?? '',
        remotePort: net.remotePort ?? 0,
        localPort: net.localPort ?? 0,
        upgradeRequest: { url: req.url ?? '', headers: req.headers },
      });
    });
  };
  // The time-series live tail serves /timeseries/tail on the HTTP port too (then it answers unknown paths).
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    serveUpgrade(req, socket, head, options.http.listenerCount('upgrade') > 1);
  options.http.on('upgrade', onUpgrade);

  // WSS (and the ALPN port's http/1.1): TLS sockets handed to an HTTP server that never listens, serving
  // only the upgrade at /mqtt (anything else: 404).
  const wsOverTls = createHttpServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' });
    res.end('MQTT over WebSocket is served at /mqtt\n');
  });
  wsOverTls.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    serveUpgrade(req, socket, head, false),
  );
  /** Sockets handed on from the WSS and ALPN listeners (their servers do not close them). */
  const handedOn = new Set<TLSSocket>();
  const handOn = (socket: TLSSocket, to: (s: TLSSocket) => void) => {
    handedOn.add(socket);
    socket.once('close', () => handedOn.delete(socket));
    to(socket);
  };
  const toWebSocket = (socket: TLSSocket) => wsOverTls.emit('connection', socket);
  const tlsListener = (
    transport: string,
    secure: () => object,
    extra: object,
    onSecure: (socket: TLSSocket) => void,
  ): TlsServer => {
    const server = createTlsServer({ ...secure(), ...extra }, onSecure);
    server.maxConnections = config.limits.maxConnections;
    server.on('tlsClientError', (err, socket) => {
      refused.inc({ transport, reason: 'handshake' });
      warn({ remote: socket.remoteAddress, transport, error: err.message }, 'TLS handshake failed');
    });
    servers.push(server);
    return server;
  };

  let wss: Endpoint | null = null;
  if (config.mqtt.wssPort !== null) {
    // Server certificate only: no client certificate is asked for (reference §8.0: SigV4 or custom auth).
    const serverOnly = () => ({
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      minVersion: 'TLSv1.2' as const,
    });
    const server = tlsListener('wss', serverOnly, { ALPNProtocols: [ALPN.ws] }, (socket) =>
      handOn(socket, toWebSocket),
    );
    wss = await listen(server, config.mqtt.wssHost, config.mqtt.wssPort);
  }

  let alpnServer: TlsServer | null = null;
  let alpn: Endpoint | null = null;
  if (config.mqtt.alpnPort !== null) {
    const mqttOverTls = onSocket('tls');
    alpnServer = tlsListener(
      'alpn',
      secureOptions,
      { ALPNProtocols: [ALPN.mqtt, ALPN.http, ALPN.ws] },
      (socket) => {
        const protocol = socket.alpnProtocol;
        if (protocol === ALPN.mqtt) return mqttOverTls(socket);
        if (protocol === ALPN.http) {
          if (options.deviceHttps) return handOn(socket, options.deviceHttps);
          refused.inc({ transport: 'alpn', reason: 'no_device_https' });
          return socket.destroy();
        }
        handOn(socket, toWebSocket);
      },
    );
    alpn = await listen(alpnServer, config.mqtt.alpnHost, config.mqtt.alpnPort);
  }

  return {
    mqtt,
    mqtts,
    wss,
    alpn,
    wsPath,
    setTrustedCas(pems) {
      trusted = pems;
      tlsServer?.setSecureContext(secureOptions());
      alpnServer?.setSecureContext(secureOptions());
    },
    async close() {
      options.http.off('upgrade', onUpgrade);
      for (const client of wsServer.clients) client.terminate();
      wsServer.close();
      for (const socket of handedOn) socket.destroy();
      await Promise.all(servers.map(closeServer));
    },
  };
}
