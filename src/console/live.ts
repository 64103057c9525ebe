import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, type Logger, type Registry } from '../observability/index.js';
import type { Point, Timeseries } from '../timeseries/index.js';
import type { OverviewReader } from './overview.js';
import { SECURITY_HEADERS } from './static.js';

/**
 * The console's live feed: one Server-Sent Events stream per browser tab, carrying the fleet overview
 * (`event: overview`, once a second) and the points of the series the tab charts (`event: points`, each
 * committed time-series batch as it commits).
 *
 * Contract:
 * - Fan-out is shared: one time-series tail per distinct (thing, metric) however many tabs chart it, and
 *   each event is serialized once and written to every subscriber (100 viewers cost one JSON.stringify).
 * - Bounded: at most `maxClients` feeds (a new one beyond is refused by the caller, counted); a feed whose
 *   socket has more than `maxBufferBytes` unwritten is closed as a slow consumer, counted by reason in
 *   `thingstead_console_live_dropped_total`. Nothing is queued beyond what the socket holds.
 * - A comment line every 15 s keeps proxies from closing an idle stream.
 */
export interface LiveSubscription {
  readonly overview: boolean;
  /** Things' metrics to stream, e.g. [{ thing: 't1', metric: 'temperature' }]. */
  readonly series: ReadonlyArray<{ readonly thing: string; readonly metric: string }>;
}

interface Client {
  readonly res: ServerResponse;
  readonly overview: boolean;
  readonly keys: readonly string[];
}

const keyOf = (thing: string, metric: string) => `${thing}\u0000${metric}`;

export function createLiveHub(o: {
  readonly timeseries: Timeseries;
  readonly overview: OverviewReader;
  readonly metrics: Registry;
  readonly logger: Logger;
  readonly maxClients: number;
  readonly maxBufferBytes: number;
  readonly overviewEveryMs?: number;
}) {
  const clients = new Set<Client>();
  const bySeries = new Map<string, { subscribers: Set<Client>; stop: () => void }>();
  const dropped = new Counter({
    name: 'thingstead_console_live_dropped_total',
    help: 'Console live feeds closed or refused by the server, by reason (slow_consumer, limit).',
    labelNames: ['reason'],
    registers: [o.metrics],
  });
  new Gauge({
    name: 'thingstead_console_live_clients',
    help: 'Open console live feeds (Server-Sent Events).',
    registers: [o.metrics],
    collect() {
      this.set(clients.size);
    },
  });

  const remove = (c: Client) => {
    if (!clients.delete(c)) return;
    for (const key of c.keys) {
      const s = bySeries.get(key);
      if (!s) continue;
      s.subscribers.delete(c);
      if (s.subscribers.size === 0) {
        s.stop();
        bySeries.delete(key);
      }
    }
  };
  /** Write one event frame; a subscriber that cannot keep up is cut off, never buffered without end. */
  const send = (c: Client, frame: string) => {
    if (c.res.writableLength > o.maxBufferBytes) {
      dropped.inc({ reason: 'slow_consumer' });
      o.logger.warn({ buffered: c.res.writableLength }, 'console live feed cut off: slow consumer');
      remove(c);
      c.res.destroy();
      return;
    }
    c.res.write(frame);
  };

  let overviewTimer: NodeJS.Timeout | null = null;
  let overviewBusy = false;
  const tickOverview = () => {
    const targets = [...clients].filter((c) => c.overview);
    if (targets.length === 0 || overviewBusy) return;
    overviewBusy = true;
    o.overview
      .read()
      .then((ov) => {
        const frame = `event: overview\ndata: ${JSON.stringify(ov)}\n\n`;
        for (const c of targets) if (clients.has(c)) send(c, frame);
      })
      .catch((err: unknown) => o.logger.warn({ err }, 'console overview failed'))
      .finally(() => (overviewBusy = false));
  };
  const heartbeat = setInterval(() => {
    for (const c of clients) send(c, ': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  const onPoints = (key: string, thing: string, metric: string) => (points: readonly Point[]) => {
    const s = bySeries.get(key);
    if (!s) return;
    const frame = `event: points\ndata: ${JSON.stringify({
      thing,
      metric,
      points: points.map((p) => [p.ts, p.value]),
    })}\n\n`;
    for (const c of s.subscribers) send(c, frame);
  };

  return {
    /** Open feeds now. */
    get size() {
      return clients.size;
    },
    /** False (and counted) when the feed limit is reached: answer 503 then. */
    admit(): boolean {
      if (clients.size < o.maxClients) return true;
      dropped.inc({ reason: 'limit' });
      return false;
    },
    /** Serve one feed on this response until the browser goes away. */
    open(req: IncomingMessage, res: ServerResponse, sub: LiveSubscription): void {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.socket?.setNoDelay(true);
      const keys = [...new Set(sub.series.map((s) => keyOf(s.thing, s.metric)))];
      const client: Client = { res, overview: sub.overview, keys };
      clients.add(client);
      for (const s of sub.series) {
        const key = keyOf(s.thing, s.metric);
        let entry = bySeries.get(key);
        if (!entry) {
          const stop = o.timeseries.tail(
            { thing: s.thing, metric: s.metric },
            onPoints(key, s.thing, s.metric),
          );
          bySeries.set(key, (entry = { subscribers: new Set(), stop }));
        }
        entry.subscribers.add(client);
      }
      res.write(`retry: 2000\nevent: ready\ndata: {}\n\n`);
      const gone = () => remove(client);
      req.on('close', gone);
      res.on('error', gone);
      if (sub.overview) {
        overviewTimer ??= setInterval(tickOverview, o.overviewEveryMs ?? 1000);
        overviewTimer.unref();
        tickOverview();
      }
    },
    close() {
      clearInterval(heartbeat);
      if (overviewTimer) clearInterval(overviewTimer);
      for (const c of [...clients]) {
        remove(c);
        c.res.end();
      }
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;
