/**
 * Observability: structured logs (pino, JSON lines) and Prometheus metrics (prom-client) for every
 * context; `rateLimitedLog` for log lines that could repeat per event.
 * Imports: no other context (a leaf).
 */
import { pino, type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';

export type { Logger } from 'pino';
export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Structured logs (pino, JSON lines on stdout). Contexts take a child logger: `logger.child({ ctx: 'mqtt' })`.
 * @example const log = createLogger('info'); log.info({ port }, 'listening');
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return destination ? pino({ level }, destination) : pino({ level });
}

/**
 * A metrics registry owned by one platform instance (several platforms may share a process in tests).
 * Served at GET /metrics in the Prometheus text format.
 */
export function createMetricsRegistry(options: { processMetrics: boolean }): Registry {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'thingstead_' });
  return registry;
}

/**
 * Log at most `perWindow` lines per `windowMs` for a noisy event (refused TLS handshakes, slow consumers),
 * then one summary line with the number suppressed.
 */
export function rateLimitedLog(log: Logger, perWindow = 10, windowMs = 10_000) {
  let windowStart = 0;
  let count = 0;
  let suppressed = 0;
  return (obj: object, msg: string): void => {
    const now = Date.now();
    if (now - windowStart > windowMs) {
      if (suppressed > 0) log.warn({ suppressed }, `${suppressed} similar log lines suppressed`);
      windowStart = now;
      count = 0;
      suppressed = 0;
    }
    if (count++ < perWindow) log.warn(obj, msg);
    else suppressed++;
  };
}
