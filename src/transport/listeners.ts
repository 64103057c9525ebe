import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
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

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Start the MQTT listeners named in config and attach MQTT over WebSocket to the HTTP server.
 * Plain TCP is off unless `mqtt.port` is set; TLS requests (but does not require) a client certificate.
 */
export async function startListeners(options: {
  config: Config;
  tls: ServerTls;
  broker: Broker;
  http: HttpServer;
  logger: Logger;
  metrics: Registry;
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
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.limits.maxPacketBytes + 16,
    perMessageDeflate: false,
    handleProtocols: (protocols) =>
      protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
  });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== wsPath) {
      // Other contexts may serve their own upgrade paths on this server (the time-series live tail at
      // /timeseries/tail); then they answer unknown paths too.
      if (options.http.listenerCount('upgrade') > 1) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
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
  options.http.on('upgrade', onUpgrade);

  return {
    mqtt,
    mqtts,
    wsPath,
    setTrustedCas(pems) {
      trusted = pems;
      tlsServer?.setSecureContext(secureOptions());
    },
    async close() {
      options.http.off('upgrade', onUpgrade);
      for (const client of wss.clients) client.terminate();
      wss.close();
      await Promise.all(servers.map(closeServer));
    },
  };
}
