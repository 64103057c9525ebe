import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger, Registry } from '../observability/index.js';

/**
 * One HTTP handler mounted on the platform's HTTP port. Returns true when it handled the request;
 * handlers are tried in mount order, and the first to return true wins.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface HttpServer {
  readonly server: Server;
  /** Mount a handler (control plane, data plane, console). */
  use(handler: HttpHandler): void;
  listen(host: string, port: number): Promise<AddressInfo>;
  close(): Promise<void>;
}

/**
 * The platform's HTTP server: API, console, /metrics, /healthz; MQTT over WebSocket attaches to its
 * `upgrade` event at /mqtt (see src/transport).
 */
export function createHttpServer(options: {
  logger: Logger;
  metrics: Registry;
  /** Readiness for /healthz: returns problems, empty when healthy. */
  health: () => string[];
}): HttpServer {
  const handlers: HttpHandler[] = [];
  const builtin: HttpHandler = async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      const problems = options.health();
      res.writeHead(problems.length ? 503 : 200, { 'content-type': 'application/json' });
      // 503 + degraded: a load balancer should send new clients elsewhere while, e.g., the store fails.
      res.end(JSON.stringify({ status: problems.length ? 'degraded' : 'ok', problems }));
      return true;
    }
    if (req.method === 'GET' && path === '/metrics') {
      const body = await options.metrics.metrics();
      res.writeHead(200, { 'content-type': options.metrics.contentType });
      res.end(body);
      return true;
    }
    return false;
  };
  handlers.push(builtin);
  const server = createServer((req, res) => {
    void (async () => {
      try {
        for (const handler of handlers) if (await handler(req, res)) return;
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `No route for ${req.method} ${(req.url ?? '/').split('?')[0]}` }));
      } catch (err) {
        options.logger.error({ err, url: req.url, method: req.method }, 'unhandled error in HTTP handler');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'internal error' }));
      }
    })();
  });
  server.keepAliveTimeout = 65_000;
  return {
    server,
    use(handler) {
      handlers.push(handler);
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
