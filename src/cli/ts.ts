import { Command } from 'commander';
import WebSocket from 'ws';
import { signRequest, uriEncode } from '../sigv4/index.js';
import {
  CliError,
  call,
  connectionOptions,
  printTable,
  resolveConnection,
  withConnection,
} from './connection.js';

/**
 * `thingstead ts ...`: the built-in time-series store over its SigV4-signed API: list series, query raw or
 * downsampled (JSON, CSV or a table), write points, run retention, and tail new points live (WebSocket).
 */

type Conn = ReturnType<typeof resolveConnection>;

/** Headers for a signed GET (CSV responses and the WebSocket upgrade are not JSON calls). */
function signedGet(conn: Conn, path: string, params: Record<string, string | undefined>) {
  const url = new URL(conn.endpoint);
  const query = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .join('&');
  const headers = signRequest({
    method: 'GET',
    host: url.host,
    path,
    query,
    body: Buffer.alloc(0),
    accessKeyId: conn.accessKeyId,
    secretAccessKey: conn.secretAccessKey,
    region: conn.region,
    service: 'iot',
  });
  return { url: `${url.origin}${path}${query ? `?${query}` : ''}`, headers };
}

const time = (ms: number) => new Date(ms).toISOString();

export function registerTimeseries(program: Command): void {
  const ts = connectionOptions(
    new Command('ts').description('Query and manage the built-in time-series store.'),
  );

  ts.command('series')
    .description('List series (thing, metric) with point counts and time span.')
    .option('--thing <name>', 'only this thing')
    .action(
      withConnection(async (conn, flags) => {
        const r = await call(conn, 'GET', '/timeseries/series', { query: { thing: flags.thing } });
        if (flags.json) return console.log(JSON.stringify(r.series, null, 2));
        printTable(
          (r.series as any[]).map((s) => ({ ...s, firstTs: time(s.firstTs), lastTs: time(s.lastTs) })),
        );
      }),
    );

  ts.command('query')
    .description('Raw points, or downsampled by --step with --agg (avg min max sum count last p50 p95 p99).')
    .requiredOption('--metric <name>', 'the metric, e.g. temperature')
    .option('--thing <names>', 'comma-separated things (default: all)')
    .option('--group <thingGroup>', 'every thing in a thing group (one series unless --group-by thing)')
    .option('--from <time>', 'epoch ms, ISO-8601, now or -<duration> (default -1h)', '-1h')
    .option('--to <time>', 'end, exclusive (default now)')
    .option('--step <duration>', 'bucket width, e.g. 1m, 5m, 1h')
    .option('--agg <fn>', 'aggregate for --step', 'avg')
    .option('--group-by <thing|all>', 'one series per thing, or one over all')
    .option('--limit <n>', 'raw points at most', '1000')
    .option('--format <table|json|csv>', 'output format', 'table')
    .action(
      withConnection(async (conn, flags) => {
        const params: Record<string, string | undefined> = {
          metric: flags.metric,
          thing: flags.thing,
          group: flags.group,
          from: flags.from,
          to: flags.to,
          step: flags.step,
          agg: flags.step ? flags.agg : undefined,
          groupBy: flags.groupBy,
          limit: flags.step ? undefined : flags.limit,
        };
        const format = flags.json ? 'json' : String(flags.format);
        if (format === 'csv') {
          const { url, headers } = signedGet(conn, '/timeseries/query', { ...params, format: 'csv' });
          const { host: _h, ...send } = headers;
          const res = await fetch(url, { headers: send });
          const text = await res.text();
          if (!res.ok) throw new CliError(`${res.headers.get('x-amzn-errortype') ?? res.status}: ${text}`);
          process.stdout.write(text);
          return;
        }
        const r = await call(conn, 'GET', '/timeseries/query', { query: params });
        if (format === 'json') return console.log(JSON.stringify(r, null, 2));
        if (r.points)
          printTable((r.points as any[]).map((p) => ({ time: time(p.ts), thing: p.thing, value: p.value })));
        else
          printTable(
            (r.series as any[]).flatMap((s) =>
              (s.points as any[]).map((p) => ({ time: time(p.ts), series: s.key, [String(r.agg)]: p.value })),
            ),
          );
      }),
    );

  ts.command('write')
    .description('Write one point (handy for checks; devices write through rules).')
    .requiredOption('--thing <name>', 'thing')
    .requiredOption('--metric <name>', 'metric')
    .requiredOption('--value <v>', 'number, or text for a string measure')
    .option('--ts <time>', 'epoch ms or ISO-8601 (default now)')
    .action(
      withConnection(async (conn, flags) => {
        const v = String(flags.value);
        const value = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v) ? Number(v) : v;
        const at =
          flags.ts === undefined
            ? Date.now()
            : /^\d+$/.test(String(flags.ts))
              ? Number(flags.ts)
              : String(flags.ts);
        await call(conn, 'POST', '/timeseries/points', {
          body: { points: [{ thing: flags.thing, metric: flags.metric, ts: at, value }] },
        });
        console.log('written');
      }),
    );

  ts.command('retention')
    .description(
      'Roll raw points older than --raw-max-age into --rollup-step rollups, delete them, expire old rollups.',
    )
    .requiredOption('--raw-max-age <duration>', 'e.g. 30d')
    .option('--rollup-step <duration>', 'rollup bucket width', '1h')
    .option('--rollup-max-age <duration>', 'delete rollups older than this (default: keep)')
    .action(
      withConnection(async (conn, flags) => {
        const r = await call(conn, 'POST', '/timeseries/retention', {
          body: {
            rawMaxAge: flags.rawMaxAge,
            rollupStep: flags.rollupStep,
            ...(flags.rollupMaxAge ? { rollupMaxAge: flags.rollupMaxAge } : {}),
          },
        });
        console.log(
          `rolled up ${r.rolledUp} buckets, deleted ${r.deleted} raw points; raw data now starts at ${time(r.watermark)}`,
        );
      }),
    );

  ts.command('tail')
    .description('Print points as they are written (WebSocket), until interrupted.')
    .option('--thing <name>', 'only this thing')
    .option('--metric <name>', 'only this metric')
    .action(
      withConnection(async (conn, flags) => {
        const { url, headers } = signedGet(conn, '/timeseries/tail', {
          thing: flags.thing,
          metric: flags.metric,
        });
        const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
        await new Promise<void>((resolve, reject) => {
          ws.on('unexpected-response', (_req, res) =>
            reject(new CliError(`tail refused: HTTP ${res.statusCode} (check credentials)`)),
          );
          ws.on('error', (err) => reject(new CliError(`tail: ${err.message}`)));
          ws.on('close', () => resolve());
          ws.on('message', (data: Buffer) => {
            const { points } = JSON.parse(data.toString()) as {
              points: Array<{ thing: string; metric: string; ts: number; value: unknown }>;
            };
            for (const p of points)
              console.log(
                flags.json ? JSON.stringify(p) : `${time(p.ts)}  ${p.thing}  ${p.metric}=${String(p.value)}`,
              );
          });
          process.once('SIGINT', () => ws.close());
        });
      }),
    );

  program.addCommand(ts);
}
