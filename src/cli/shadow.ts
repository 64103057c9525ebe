import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { AwsApiError, encodePath, signedFetch, type SignedFetchOptions } from '../api/index.js';
import { CliError, call, connectionOptions, withConnection, type CommandFlags } from './connection.js';

/**
 * `thingstead shadow get|update|delete|list|history`: device shadows over the HTTP data plane (GetThingShadow,
 * UpdateThingShadow, DeleteThingShadow, ListNamedShadowsForThing, signed with signing name `iotdata` as
 * `aws iot-data` signs them), and the optional history from the time-series API (`shadow.history`).
 * Readable output is a tree of desired / reported / delta with the delta's keys marked; `--json` prints the
 * API's document unchanged. API errors print AWS's message and what to do next.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const dataPlane = (conn: SignedFetchOptions): SignedFetchOptions => ({ ...conn, service: 'iotdata' });

const shadowPath = (thing: string) => `/things/${encodePath(thing)}/shadow`;
const nameQuery = (name: string | undefined) => (name ? { name } : {});
const label = (thing: string, name: string | undefined) =>
  name ? `${thing}, named shadow ${name}` : `${thing}, classic shadow`;

/** Flags that say which shadow (`--name` for a named one), for the hints printed with errors. */
const nameFlag = (name: string | undefined) => (name ? ` --name ${name}` : '');

function parseJson(text: string, what: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** What to do next after a data-plane error, by HTTP status (reference §8.2 codes). */
function shadowHint(status: number, thing: string, name: string | undefined): string | undefined {
  const who = `${thing}${nameFlag(name)}`;
  switch (status) {
    case 400:
      return `The document must look like '{"state":{"desired":{...},"reported":{...}}}' (null removes a field). Check --desired/--reported/--file.`;
    case 404:
      return `Create it with \`thingstead shadow update ${who} --desired '{"key":"value"}'\`; \`thingstead shadow list ${thing}\` shows which shadows exist.`;
    case 413:
      return 'The state (desired + reported) would exceed shadow.maxStateBytes (AWS: 8 KB): remove fields with null, or raise THINGSTEAD_SHADOW_MAX_STATE_BYTES.';
    case 429:
      return 'Too many updates for this thing right now (shadow.maxUpdatesPerSecondPerThing, AWS: 20/s): retry in a second.';
    default:
      return undefined;
  }
}

/**
 * One data-plane call; errors become CliErrors with AWS's name and message and a hint. A 409 reads the
 * shadow's current version so the hint can name it.
 */
async function shadowCall(
  conn: SignedFetchOptions,
  target: { thing: string; name: string | undefined },
  method: string,
  path: string,
  request: Parameters<typeof signedFetch>[3] = {},
): Promise<any> {
  try {
    return await signedFetch(dataPlane(conn), method, path, request);
  } catch (err) {
    if (!(err instanceof AwsApiError)) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code === 'ECONNREFUSED')
        throw new CliError(`cannot reach the API at ${conn.endpoint}: is \`thingstead up\` running?`);
      throw err;
    }
    let hint = shadowHint(err.status, target.thing, target.name) ?? GENERIC_HINTS[err.name];
    if (err.status === 409) {
      const now = await currentVersion(conn, target.thing, target.name);
      hint =
        now === undefined
          ? 'The shadow does not exist now: re-run without --version.'
          : `The shadow is at version ${now}; re-run with --version ${now} or without --version.`;
    }
    throw new CliError(`${err.name}: ${err.message}${hint ? `\n${hint}` : ''}`);
  }
}

const GENERIC_HINTS: Record<string, string> = {
  InvalidSignatureException:
    'The credentials do not match this server (or the clock is off by more than 5 minutes). Check --profile and the credentials file.',
  UnrecognizedClientException:
    'This access key is unknown to the server: check --profile, or create a key with `thingstead keys create`.',
  AccessDeniedException: 'This key is read-only: use an admin key (--profile) for changes.',
};

async function currentVersion(
  conn: SignedFetchOptions,
  thing: string,
  name: string | undefined,
): Promise<number | undefined> {
  try {
    const doc = await signedFetch(dataPlane(conn), 'GET', shadowPath(thing), { query: nameQuery(name) });
    return typeof doc.version === 'number' ? doc.version : undefined;
  } catch {
    return undefined;
  }
}

/** The latest `timestamp` anywhere in a metadata tree (epoch seconds), or undefined. */
function lastUpdate(meta: unknown): number | undefined {
  let latest: number | undefined;
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!isObject(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'timestamp' && typeof v === 'number') latest = Math.max(latest ?? 0, v);
      else walk(v);
    }
  };
  walk(meta);
  return latest;
}

const ago = (seconds: number) => {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
};

const when = (epochSeconds: number) =>
  `${new Date(epochSeconds * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')} (${ago(epochSeconds)})`;

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const highlight = (text: string) => (color ? `\u001b[1;33m${text}\u001b[0m` : text);

/**
 * Lines of an indented tree: objects open a level, scalars and arrays (kept whole, as in a shadow) print as
 * JSON. A leaf whose path is in `delta` is highlighted and flagged: `<- delta` in desired, `<- desired: v`
 * in reported (`mark` picks the text).
 */
export function tree(
  value: Json,
  delta?: Json,
  mark: (wanted: Json) => string = () => 'delta',
  indent = '  ',
): string[] {
  if (!isObject(value)) return [`${indent}${JSON.stringify(value)}`];
  const keys = Object.keys(value);
  if (keys.length === 0) return [`${indent}(empty)`];
  const lines: string[] = [];
  for (const key of keys) {
    const v = value[key]!;
    const d = isObject(delta) ? delta[key] : undefined;
    if (isObject(v) && Object.keys(v).length > 0) {
      lines.push(`${indent}${d !== undefined && !isObject(d) ? highlight(key) : key}:`);
      lines.push(...tree(v, d, mark, `${indent}  `));
    } else if (d !== undefined)
      lines.push(`${indent}${highlight(`${key}: ${JSON.stringify(v)}`)}   <- ${mark(d)}`);
    else lines.push(`${indent}${key}: ${JSON.stringify(v)}`);
  }
  return lines;
}

/** Dotted paths of the leaves of a delta (`level.brightness`). */
function leafPaths(value: Json, prefix = ''): string[] {
  if (!isObject(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

function printShadow(doc: any, thing: string, name: string | undefined): void {
  const state = (doc.state ?? {}) as Record<string, Json>;
  const updated = lastUpdate(doc.metadata);
  console.log(`${label(thing, name)}`);
  console.log(`  version      ${doc.version}`);
  if (updated !== undefined) console.log(`  last update  ${when(updated)}`);
  for (const section of ['desired', 'reported'] as const) {
    console.log(section);
    const mark = section === 'desired' ? undefined : (wanted: Json) => `desired: ${JSON.stringify(wanted)}`;
    const value = state[section];
    console.log(value === undefined ? '  (none)' : tree(value, state.delta, mark).join('\n'));
  }
  if (state.delta === undefined) console.log('delta\n  (none: reported matches desired)');
  else {
    const keys = leafPaths(state.delta);
    console.log(`delta  ${keys.length} key${keys.length === 1 ? '' : 's'} desired but not yet reported`);
    console.log(tree(state.delta).join('\n'));
  }
}

/** The update document from --file, or from --desired / --reported / --version / --client-token. */
function updateBody(flags: CommandFlags): Record<string, unknown> {
  if (flags.file) {
    if (flags.desired !== undefined || flags.reported !== undefined)
      throw new CliError('give --file, or --desired/--reported, not both');
    const file = String(flags.file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const body = parseJson(text, file);
    if (!isObject(body)) throw new CliError(`${file}: expected a JSON object '{"state":{...}}'`);
    if (flags.version !== undefined) body.version = versionOf(flags.version);
    return body;
  }
  if (flags.desired === undefined && flags.reported === undefined)
    throw new CliError(
      'give --desired \'{"key":"value"}\', --reported \'{...}\' (null removes a field), or --file doc.json',
    );
  const state: Record<string, Json> = {};
  if (flags.desired !== undefined) state.desired = parseJson(String(flags.desired), '--desired');
  if (flags.reported !== undefined) state.reported = parseJson(String(flags.reported), '--reported');
  return {
    state,
    ...(flags.version !== undefined ? { version: versionOf(flags.version) } : {}),
    ...(flags.clientToken ? { clientToken: String(flags.clientToken) } : {}),
  };
}

function versionOf(v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--version ${String(v)}: expected a whole number`);
  return n;
}

/** One history point: the time-series value is `{"version","state","deleted"?}` as JSON text. */
interface HistoryEntry {
  readonly at: number;
  readonly version?: number;
  readonly state?: Json;
  readonly deleted?: Json;
}

/** `--since`: a duration (1h, 30m, 2d) back from now, or an instant (epoch ms, ISO-8601). */
const sinceParam = (since: string) => (/^\d+(\.\d+)?(ms|s|m|h|d|w)$/.test(since) ? `-${since}` : since);

const HELP = `
Examples:
  $ thingstead shadow get lamp                          # classic shadow as a tree, delta marked
  $ thingstead shadow get lamp --name config --json     # a named shadow, the raw document
  $ thingstead shadow update lamp --desired '{"color":"red"}'
  $ thingstead shadow update lamp --reported '{"color":"red"}' --version 4   # only if still at version 4
  $ thingstead shadow update lamp --desired '{"color":null}'                # null removes a field
  $ thingstead shadow update lamp --name config --file doc.json             # '{"state":{...}}'
  $ thingstead shadow delete lamp
  $ thingstead shadow list lamp                         # named shadows, and whether the classic one exists
  $ thingstead shadow history lamp --since 1h           # every accepted version (needs shadow.history)

Endpoint and credentials come from ./data (endpoints.json, credentials) unless --endpoint-url/--profile.`;

export function registerShadow(program: Command): void {
  const shadow = connectionOptions(
    new Command('shadow').description(
      'Read and change device shadows (classic or --name), list them, and show their history.',
    ),
  ).addHelpText('after', HELP);
  const named = (cmd: Command) =>
    cmd.option('--name <shadow>', 'a named shadow (default: the classic shadow)');

  named(
    shadow.command('get <thing>').description('Show a shadow: version, last update, desired/reported/delta.'),
  )
    .addHelpText('after', '\nExample:\n  $ thingstead shadow get lamp --name config')
    .action(
      withConnection(async (conn, flags, thing) => {
        const name = flags.name as string | undefined;
        const doc = await shadowCall(conn, { thing, name }, 'GET', shadowPath(thing), {
          query: nameQuery(name),
        });
        if (flags.json) return console.log(JSON.stringify(doc, null, 2));
        printShadow(doc, thing, name);
      }),
    );

  named(
    shadow
      .command('update <thing>')
      .description(
        'Update a shadow: partial documents merge, null removes a field, arrays are replaced whole.',
      )
      .option('--desired <json>', 'desired state to merge, e.g. \'{"color":"red"}\'')
      .option('--reported <json>', 'reported state to merge')
      .option('--version <n>', 'write only if the shadow is still at version n (else 409)')
      .option('--client-token <token>', 'clientToken echoed in the answers')
      .option('--file <doc.json>', 'the whole update document, e.g. {"state":{"desired":{...}}}'),
  )
    .addHelpText(
      'after',
      `\nExamples:\n  $ thingstead shadow update lamp --desired '{"color":"red","level":{"brightness":80}}'\n  $ thingstead shadow update lamp --reported '{"color":"red"}' --version 3`,
    )
    .action(
      withConnection(async (conn, flags, thing) => {
        const name = flags.name as string | undefined;
        const body = updateBody(flags);
        const accepted = await shadowCall(conn, { thing, name }, 'POST', shadowPath(thing), {
          query: nameQuery(name),
          body,
        });
        if (flags.json) return console.log(JSON.stringify(accepted, null, 2));
        console.log(`updated ${label(thing, name)}: now version ${accepted.version}`);
        const state = (accepted.state ?? {}) as Record<string, Json>;
        for (const section of ['desired', 'reported'] as const)
          if (state[section] !== undefined)
            console.log(`${section} (written)\n${tree(state[section]).join('\n')}`);
        const now = await shadowCall(conn, { thing, name }, 'GET', shadowPath(thing), {
          query: nameQuery(name),
        }).catch(() => undefined);
        const delta = now?.state?.delta as Json | undefined;
        if (now?.version !== accepted.version) return; // someone wrote meanwhile: their delta, not ours
        console.log(
          delta === undefined
            ? 'delta: none (reported matches desired)'
            : `delta: ${highlight(leafPaths(delta).join(', '))}`,
        );
      }),
    );

  named(shadow.command('delete <thing>').description('Delete a shadow (its version is kept for 48 hours).'))
    .addHelpText('after', '\nExample:\n  $ thingstead shadow delete lamp --name config')
    .action(
      withConnection(async (conn, flags, thing) => {
        const name = flags.name as string | undefined;
        const r = await shadowCall(conn, { thing, name }, 'DELETE', shadowPath(thing), {
          query: nameQuery(name),
        });
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        console.log(
          `deleted ${label(thing, name)} at version ${r.version}; an update within 48 h continues at version ${Number(r.version) + 1}`,
        );
      }),
    );

  shadow
    .command('list <thing>')
    .description("List a thing's named shadows and say whether its classic shadow exists.")
    .addHelpText('after', '\nExample:\n  $ thingstead shadow list lamp --json')
    .action(
      withConnection(async (conn, flags, thing) => {
        const target = { thing, name: undefined };
        const results: string[] = [];
        let nextToken: string | undefined;
        do {
          const page = await shadowCall(
            conn,
            target,
            'GET',
            `/api/things/shadow/ListNamedShadowsForThing/${encodePath(thing)}`,
            { query: { pageSize: 100, nextToken } },
          );
          results.push(...((page.results as string[] | undefined) ?? []));
          nextToken = page.nextToken as string | undefined;
        } while (nextToken);
        const classic = await currentVersion(conn, thing, undefined);
        if (flags.json)
          return console.log(
            JSON.stringify({ thingName: thing, classicShadow: classic !== undefined, results }, null, 2),
          );
        console.log(
          classic === undefined
            ? `classic shadow: none (create it with \`thingstead shadow update ${thing} --desired '{...}'\`)`
            : `classic shadow: yes, version ${classic}`,
        );
        console.log(`named shadows: ${results.length === 0 ? '(none)' : results.length}`);
        for (const n of results) console.log(`  ${n}`);
      }),
    );

  named(
    shadow
      .command('history <thing>')
      .description(
        'Every accepted version of a shadow from the time-series store (when shadow.history is on).',
      )
      .option(
        '--since <time>',
        'a duration back from now (30m, 1h, 7d) or an instant (ISO-8601, epoch ms)',
        '1h',
      )
      .option('--limit <n>', 'the latest n versions at most', '100'),
  )
    .addHelpText('after', '\nExample:\n  $ thingstead shadow history lamp --since 1d --limit 20')
    .action(
      withConnection(async (conn, flags, thing) => {
        const name = flags.name as string | undefined;
        const metric = name ? `$shadow/${name}` : '$shadow';
        const limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
          throw new CliError(`--limit ${String(flags.limit)}: expected 1..100000`);
        const r = await call(conn, 'GET', '/timeseries/query', {
          query: { metric, thing, from: sinceParam(String(flags.since)), limit, order: 'desc' },
        });
        const points = ((r.points as Array<{ ts: number; value: unknown }>) ?? []).reverse();
        const versions = points.map((p): HistoryEntry => {
          const v = typeof p.value === 'string' ? parseJson(p.value, 'a history point') : {};
          return { at: p.ts, ...(isObject(v) ? v : {}) };
        });
        if (flags.json) return console.log(JSON.stringify(versions, null, 2));
        if (versions.length === 0) {
          console.log(`no history for ${label(thing, name)} since ${String(flags.since)}.`);
          console.log(
            'History is kept only while shadow.history is on: start the platform with THINGSTEAD_SHADOW_HISTORY=true\n' +
              '(or {"shadow":{"history":true}} in the config file). Versions written before that are not recorded.',
          );
          return;
        }
        console.log(`${label(thing, name)}: ${versions.length} version${versions.length === 1 ? '' : 's'}`);
        for (const v of versions) {
          const at = new Date(v.at).toISOString();
          console.log(
            v.deleted
              ? `${at}  v${v.version}  deleted`
              : `${at}  v${v.version}  ${JSON.stringify(v.state ?? {})}`,
          );
        }
      }),
    );

  program.addCommand(shadow);
}
