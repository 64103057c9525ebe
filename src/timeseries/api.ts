import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { AwsOperation, AwsRequest, RawResponse } from '../api/index.js';
import { E } from '../errors/index.js';
import type { Timeseries } from './service.js';
import { AGGREGATES, type Aggregate, type Point, type Series } from './types.js';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** A duration: plain milliseconds or `<n><unit>` with unit ms, s, m, h, d, w. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  if (!m) throw E.TsDuration({ what, text });
  const ms = Number(m[1]) * UNITS[m[2] ?? 'ms']!;
  if (!(ms > 0)) throw E.TsDurationNotPositive({ what });
  return Math.round(ms);
}

/** An instant: epoch ms, ISO-8601, `now`, or relative to now such as `-15m`. */
export function parseInstant(text: string | undefined, fallback: number, now: number, what: string): number {
  if (text === undefined || text === '') return fallback;
  if (text === 'now') return now;
  if (/^-\d/.test(text)) return now - parseDuration(text.slice(1), what);
  if (/^\d+$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw E.TsInstant({ what, text });
  return t;
}

const csvField = (v: string | number | null | undefined) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

function csv(header: string[], rows: Array<Array<string | number | null>>): RawResponse {
  const text = [header.join(','), ...rows.map((r) => r.map(csvField).join(','))].join('\n') + '\n';
  return { raw: Buffer.from(text), contentType: 'text/csv; charset=utf-8' };
}

/**
 * The time-series query API (a Thingstead extension served by the AWS dispatcher, so it is SigV4-signed
 * like the control plane):
 * - GET  /timeseries/series[?thing=]                       series with point counts and time span
 * - GET  /timeseries/query?metric=&thing=a,b|group=&from=&to=[&step=&agg=&groupBy=thing|all][&format=csv]
 * - POST /timeseries/points  {"points":[{thing,metric,ts,value}]}   batch write
 * - POST /timeseries/retention {"rawMaxAge":"7d","rollupStep":"1h","rollupMaxAge":"365d"}  run retention now
 */
export function timeseriesOperations(ts: Timeseries): AwsOperation[] {
  return [
    {
      name: 'ListTimeseriesSeries',
      service: 'iot',
      method: 'GET',
      path: '/timeseries/series',
      readOnly: true,
      async handler(req) {
        return { series: await ts.listSeries(req.query.thing || undefined) };
      },
    },
    {
      name: 'QueryTimeseries',
      service: 'iot',
      method: 'GET',
      path: '/timeseries/query',
      readOnly: true,
      handler: (req) => query(ts, req),
    },
    {
      name: 'PutTimeseriesPoints',
      service: 'iot',
      method: 'POST',
      path: '/timeseries/points',
      async handler(req) {
        const points = req.body.points as unknown;
        if (!Array.isArray(points) || points.length === 0 || points.length > 100_000) throw E.TsPoints();
        const clean: Point[] = points.map((p: any, i) => {
          if (typeof p?.thing !== 'string' || !p.thing || typeof p.metric !== 'string' || !p.metric)
            throw E.TsPointKey({ index: i });
          if (typeof p.value !== 'number' && typeof p.value !== 'string') throw E.TsPointValue({ index: i });
          const t =
            typeof p.ts === 'number' ? p.ts : p.ts === undefined ? Date.now() : Date.parse(String(p.ts));
          if (!Number.isFinite(t)) throw E.TsPointTime({ index: i });
          return { thing: p.thing, metric: p.metric, ts: t, value: p.value };
        });
        await ts.write(clean);
        return { written: clean.length };
      },
    },
    {
      name: 'ApplyTimeseriesRetention',
      service: 'iot',
      method: 'POST',
      path: '/timeseries/retention',
      async handler(req) {
        const b = req.body;
        const policy = {
          rawMaxAgeMs: parseDuration(String(b.rawMaxAge ?? ''), 'rawMaxAge'),
          rollupStepMs: parseDuration(String(b.rollupStep ?? '1h'), 'rollupStep'),
          rollupMaxAgeMs: b.rollupMaxAge ? parseDuration(String(b.rollupMaxAge), 'rollupMaxAge') : 0,
        };
        return { ...(await ts.applyRetention(policy)) };
      },
    },
  ];
}

async function things(ts: Timeseries, req: AwsRequest): Promise<{ things: string[]; label: string | null }> {
  const q = req.query;
  if (q.group) {
    if (!ts.resolveGroup) throw E.TsNoGroups();
    const members = await ts.resolveGroup(q.group);
    return { things: members, label: q.group };
  }
  return { things: q.thing ? q.thing.split(',').filter(Boolean) : [], label: null };
}

async function query(ts: Timeseries, req: AwsRequest): Promise<Record<string, unknown> | RawResponse> {
  const q = req.query;
  if (!q.metric) throw E.MissingParameter({ name: 'metric' });
  const now = Date.now();
  const to = parseInstant(q.to, now + 1, now, 'to');
  const from = parseInstant(q.from, to - 3_600_000, now, 'from');
  if (from >= to) throw E.TsRange();
  const format = q.format ?? 'json';
  if (format !== 'json' && format !== 'csv') throw E.TsFormat();
  const { things: list, label } = await things(ts, req);
  if (label !== null && list.length === 0)
    return format === 'csv' ? csv(['key', 'ts', 'value'], []) : { metric: q.metric, series: [] };

  if (!q.step) {
    const limit = q.limit ? Number(q.limit) : 10_000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw E.TsLimit();
    const order = q.order === 'desc' ? 'desc' : 'asc';
    const points = await ts.queryRange({ things: list, metric: q.metric, from, to, limit, order });
    if (format === 'csv')
      return csv(
        ['thing', 'metric', 'ts', 'value'],
        points.map((p) => [p.thing, p.metric, p.ts, p.value]),
      );
    return {
      metric: q.metric,
      from,
      to,
      points: points.map((p) => ({ thing: p.thing, ts: p.ts, value: p.value })),
    };
  }
  const stepMs = parseDuration(q.step, 'step');
  if ((to - from) / stepMs > 100_000) throw E.TsTooManyBuckets();
  const agg = (q.agg ?? 'avg') as Aggregate;
  if (!AGGREGATES.includes(agg)) throw E.TsAggregate({ aggregates: AGGREGATES });
  // A group query is one series over its members unless groupBy=thing asks for one per thing.
  const groupBy = q.groupBy === 'all' || (label !== null && q.groupBy !== 'thing') ? 'all' : 'thing';
  const series: Series[] = await ts.downsample(
    { things: list, metric: q.metric, from, to, stepMs, agg, groupBy },
    label ?? 'all',
  );
  if (format === 'csv')
    return csv(
      ['key', 'ts', 'value'],
      series.flatMap((s) => s.points.map((p) => [s.key, p.ts, p.value])),
    );
  return { metric: q.metric, from, to, step: stepMs, agg, groupBy, series };
}

/**
 * The live tail: a WebSocket at /timeseries/tail[?thing=&metric=] that sends each committed batch of
 * matching points as one JSON text frame `{"points":[...]}`. The upgrade request is authenticated by
 * `authenticate` (SigV4 on the upgrade request); refused upgrades get 403.
 * Returns a detach function.
 */
export function attachTimeseriesTail(
  server: Server,
  ts: Timeseries,
  authenticate: (req: IncomingMessage) => Promise<boolean>,
): () => void {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/timeseries/tail') {
      // MQTT over WebSocket (src/transport) answers its own path; anything else is unknown.
      if (url.pathname !== '/mqtt') socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    void authenticate(req).then(
      (ok) => {
        if (!ok) {
          socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          const filter = {
            thing: url.searchParams.get('thing') ?? undefined,
            metric: url.searchParams.get('metric') ?? undefined,
          };
          const stop = ts.tail(filter, (points) => {
            // A slow reader is cut off rather than buffered without bound (CONVENTIONS #8).
            if (ws.bufferedAmount > 4 * 1024 * 1024) {
              ws.close(1013, 'slow consumer');
              return;
            }
            ws.send(JSON.stringify({ points }));
          });
          ws.on('close', stop);
          ws.on('error', stop);
        });
      },
      () => socket.destroy(),
    );
  };
  server.on('upgrade', onUpgrade);
  return () => {
    server.off('upgrade', onUpgrade);
    for (const c of wss.clients) c.terminate();
    wss.close();
  };
}
