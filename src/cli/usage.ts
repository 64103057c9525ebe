import { Command } from 'commander';
import { signRequest, uriEncode } from '../sigv4/index.js';
import {
  LIMITS,
  LIMIT_HELP,
  UNITS,
  UNIT_HELP,
  loadPriceTable,
  priceUsage,
  type UsageRow,
  type Unit,
} from '../metering/index.js';
import { CliError, call, connectionOptions, printTable, withConnection } from './connection.js';
import type { SignedFetchOptions } from '../api/index.js';

/**
 * `thingstead usage ...` and `thingstead quota ...`: the usage ledger (by thing, billing group, time
 * range, unit; CSV), the cost report priced with a price table file, the Parquet exports, and the quota
 * limits of things and billing groups (changed at run time).
 */

const RANGE_HELP = 'epoch ms, ISO-8601, now or -<duration> such as -24h';

function rangeOptions(cmd: Command): Command {
  return cmd
    .option('--thing <names>', 'comma-separated things')
    .option('--billing-group <name>', 'one billing group')
    .option('--from <time>', `start (${RANGE_HELP}; default -24h)`, '-24h')
    .option('--to <time>', `end, exclusive (${RANGE_HELP}; default now)`);
}

function usageQuery(flags: Record<string, any>, extra: Record<string, string | undefined> = {}) {
  return {
    thing: flags.thing as string | undefined,
    billingGroup: flags.billingGroup as string | undefined,
    from: flags.from as string | undefined,
    to: flags.to as string | undefined,
    ...extra,
  };
}

/** A signed GET whose answer is text (CSV). */
async function signedText(
  conn: SignedFetchOptions,
  path: string,
  params: Record<string, string | undefined>,
) {
  const url = new URL(conn.endpoint);
  const query = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .join('&');
  const { host: _host, ...headers } = signRequest({
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
  const res = await fetch(`${url.origin}${path}${query ? `?${query}` : ''}`, { headers });
  const text = await res.text();
  if (!res.ok) throw new CliError(`${res.headers.get('x-amzn-errortype') ?? res.status}: ${text}`);
  return text;
}

const unitList = UNITS.map((u) => `  ${u.padEnd(20)} ${UNIT_HELP[u]}`).join('\n');
const limitList = LIMITS.map((l) => `  ${l.padEnd(17)} ${LIMIT_HELP[l]}`).join('\n');

export function registerUsage(program: Command): void {
  const usage = connectionOptions(
    new Command('usage')
      .description(
        'The usage ledger: what each thing and billing group used, per hour, in AWS IoT Core units.',
      )
      .addHelpText('after', `\nUnits:\n${unitList}\n\nSee docs/metering.md.`),
  );

  rangeOptions(
    usage
      .command('show', { isDefault: true })
      .description('Usage in a time range (table, --json or --csv).')
      .option('--unit <units>', 'comma-separated units (default: all)')
      .option('--group-by <dims>', 'comma-separated: hour, day, thing, billingGroup, unit', 'day,thing,unit')
      .option('--csv', 'CSV on stdout'),
  ).action(
    withConnection(async (conn, flags) => {
      const query = usageQuery(flags, { unit: flags.unit, groupBy: flags.groupBy });
      if (flags.csv)
        return void process.stdout.write(await signedText(conn, '/usage', { ...query, format: 'csv' }));
      const r = await call(conn, 'GET', '/usage', { query });
      if (flags.json) return console.log(JSON.stringify(r, null, 2));
      if (r.rows.length === 0)
        return console.log(`no usage from ${r.from} to ${r.to} (flushed every metering.flushMs)`);
      printTable(r.rows);
    }),
  );

  rangeOptions(
    usage
      .command('cost')
      .description(
        'Price the usage with a price table file (pricing/aws-iot-core.json, pricing/azure-iot-hub.json).',
      )
      .requiredOption('--prices <file>', 'a price table file (format in docs/metering.md)')
      .option('--by <thing|billing-group>', 'split the cost over things or billing groups'),
  ).action(
    withConnection(async (conn, flags) => {
      const table = loadPriceTable(String(flags.prices));
      const by =
        flags.by === undefined
          ? undefined
          : flags.by === 'thing'
            ? 'thing'
            : flags.by === 'billing-group'
              ? 'billingGroup'
              : null;
      if (by === null) throw new CliError('--by must be thing or billing-group');
      const r = await call(conn, 'GET', '/usage', {
        query: usageQuery(flags, { groupBy: 'hour,thing,billingGroup,unit' }),
      });
      const rows: UsageRow[] = (r.rows as Array<Record<string, any>>).map((x) => ({
        hour: Date.parse(String(x.hour)),
        thing: String(x.thing),
        billingGroup: String(x.billingGroup),
        unit: x.unit as Unit,
        amount: Number(x.amount),
      }));
      const report = priceUsage(rows, table, { from: Date.parse(r.from), to: Date.parse(r.to), by });
      if (flags.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `${report.provider} prices (${table.source}, read ${report.readOn}), ${report.from} .. ${report.to}`,
      );
      printTable(
        report.lines.map((l) => ({
          item: l.item,
          quantity: l.quantity,
          [`cost (${report.currency})`]: l.cost.toFixed(6),
          confirmed: l.confirmed ? 'yes' : 'NOT CONFIRMED',
          ...(l.detail ? { detail: l.detail } : {}),
        })),
      );
      console.log(`total ${report.total.toFixed(6)} ${report.currency}`);
      if (report.by) {
        console.log(`\nby ${flags.by}:`);
        printTable(
          Object.entries(report.by).map(([k, v]) => ({ [String(flags.by)]: k, cost: v.toFixed(6) })),
        );
      }
      for (const note of report.notes) console.log(`note: ${note}`);
    }),
  );

  usage
    .command('export')
    .description(
      'Export telemetry and/or usage as Parquet (Hive partitions by date and thing or billing group).',
    )
    .option('--kind <telemetry|usage>', 'one kind (default: both)')
    .option('--from <time>', `start (${RANGE_HELP}; default -24h)`)
    .option('--to <time>', `end, exclusive (default now)`)
    .action(
      withConnection(async (conn, flags) => {
        const r = await call(conn, 'POST', '/usage/export', {
          body: { kind: flags.kind, from: flags.from, to: flags.to },
        });
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        for (const e of r.exports as Array<{
          kind: string;
          rows: number;
          files: string[];
          from: string;
          to: string;
        }>)
          console.log(`${e.kind}: ${e.rows} rows in ${e.files.length} file(s), ${e.from} .. ${e.to}`);
        console.log(
          `under ${r.dir} (read with e.g. duckdb: SELECT * FROM read_parquet('${r.dir}/telemetry/**/*.parquet', hive_partitioning = true))`,
        );
      }),
    );

  usage
    .command('flush')
    .description('Write the in-memory ledger now (it is written every metering.flushMs anyway).')
    .action(
      withConnection(async (conn) => {
        const r = await call(conn, 'POST', '/usage/flush');
        console.log(`${r.rowsWritten} ledger row(s) written`);
      }),
    );
  program.addCommand(usage);

  const quota = connectionOptions(
    new Command('quota')
      .description('Quota limits of things and billing groups (applied at once on every node, no restart).')
      .addHelpText(
        'after',
        `\nLimits:\n${limitList}\n\nA value of "off" removes the limit. See docs/metering.md.`,
      ),
  );
  const scope = (cmd: Command) =>
    cmd
      .option('--thing <name>', 'a thing (or a client id)')
      .option('--billing-group <name>', 'a billing group');
  const scopeBody = (flags: Record<string, any>) => {
    if ((flags.thing === undefined) === (flags.billingGroup === undefined))
      throw new CliError('name exactly one of --thing or --billing-group');
    return flags.thing !== undefined
      ? { thingName: String(flags.thing) }
      : { billingGroupName: String(flags.billingGroup) };
  };

  scope(
    quota
      .command('get')
      .description('Limits set for a thing or billing group (or all, and the thing defaults).'),
  ).action(
    withConnection(async (conn, flags) => {
      const query =
        flags.thing !== undefined
          ? { thingName: flags.thing }
          : flags.billingGroup !== undefined
            ? { billingGroupName: flags.billingGroup }
            : {};
      console.log(JSON.stringify(await call(conn, 'GET', '/quotas', { query }), null, 2));
    }),
  );

  scope(
    quota
      .command('set')
      .description('Set one limit of a thing or billing group, e.g. `quota set --thing t1 publishRate 10`.')
      .argument('<limit>', `one of ${LIMITS.join(', ')}`)
      .argument('<value>', 'a number >= 0, or off to remove the limit'),
  ).action(
    withConnection(async (conn, flags, limit, value) => {
      if (!(LIMITS as readonly string[]).includes(limit))
        throw new CliError(`unknown limit ${limit}; limits are ${LIMITS.join(', ')}`);
      const v = value === 'off' || value === 'none' ? null : Number(value);
      if (v !== null && (!Number.isFinite(v) || v < 0))
        throw new CliError(`${limit} must be a number >= 0, or off`);
      const r = await call(conn, 'PUT', '/quotas', {
        body: { ...scopeBody(flags), limits: { [limit]: v } },
      });
      console.log(JSON.stringify(r, null, 2));
    }),
  );
  program.addCommand(quota);
}
