import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AwsApiError, signedFetch, type SignedFetchOptions } from '../api/index.js';
import { loadConfig } from '../config/index.js';

/**
 * How CLI commands find the API: the endpoint from --endpoint-url, AWS_ENDPOINT_URL_IOT, AWS_ENDPOINT_URL or
 * `<data dir>/endpoints.json`; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile
 * (--profile, AWS_PROFILE, default `default`) of the shared-credentials file (AWS_SHARED_CREDENTIALS_FILE or
 * `<data dir>/credentials`); the region from --region, AWS_REGION, AWS_DEFAULT_REGION or the config.
 * The CLI talks to the API only, never to the database (except `thingstead keys`, see keys.ts).
 */

export interface ConnectionFlags {
  endpointUrl?: string;
  profile?: string;
  region?: string;
  dataDir?: string;
  json?: boolean;
}

/** Add the shared connection flags to a command group. */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .option(
      '--endpoint-url <url>',
      'API base URL (default: from <data dir>/endpoints.json; env AWS_ENDPOINT_URL_IOT)',
    )
    .option('--profile <name>', 'profile in the credentials file (env AWS_PROFILE, default "default")')
    .option('--region <region>', 'signing region (env AWS_REGION, default from config)')
    .option(
      '--data-dir <dir>',
      'Thingstead data directory holding endpoints.json and credentials (default ./data)',
    )
    .option('--json', 'print the raw API response as JSON');
}

/** Thrown for problems the user fixes; main prints the message alone. */
export class CliError extends Error {}

/** Parse an AWS shared-credentials file (INI) into profiles. */
export function parseCredentialsFile(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | null = null;
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(t);
    if (section) {
      current = out[section[1]!.trim()] = {};
      continue;
    }
    const eq = t.indexOf('=');
    if (eq > 0 && current) current[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return out;
}

export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): SignedFetchOptions {
  const config = loadConfig({ env, overrides: flags.dataDir ? { dataDir: flags.dataDir } : {} });
  const dataDir = resolve(config.dataDir);
  let endpoint = flags.endpointUrl ?? env.AWS_ENDPOINT_URL_IOT ?? env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    const file = join(dataDir, 'endpoints.json');
    if (!existsSync(file))
      throw new CliError(
        `no running Thingstead found: ${file} does not exist.\n` +
          'Start one with `thingstead up`, or point at it with --data-dir <dir> or --endpoint-url <url>.',
      );
    endpoint = (JSON.parse(readFileSync(file, 'utf8')) as { http: string }).http;
  }
  const region = flags.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? config.region;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY)
    return {
      endpoint,
      region,
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    };
  const credFile = env.AWS_SHARED_CREDENTIALS_FILE ?? join(dataDir, 'credentials');
  if (!existsSync(credFile))
    throw new CliError(
      `no credentials: ${credFile} does not exist.\n` +
        'It is written on the first `thingstead up`; or set AWS_SHARED_CREDENTIALS_FILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.',
    );
  const profileName = flags.profile ?? env.AWS_PROFILE ?? 'default';
  const profile = parseCredentialsFile(readFileSync(credFile, 'utf8'))[profileName];
  if (!profile?.aws_access_key_id || !profile.aws_secret_access_key)
    throw new CliError(
      `profile [${profileName}] with aws_access_key_id and aws_secret_access_key not found in ${credFile}.\n` +
        'Create a key with `thingstead keys create <name> --save`, or pick another profile with --profile.',
    );
  return {
    endpoint,
    region,
    accessKeyId: profile.aws_access_key_id,
    secretAccessKey: profile.aws_secret_access_key,
  };
}

const HINTS: Record<string, string> = {
  ResourceNotFoundException: 'Check the name; list what exists with the matching `list` command.',
  ResourceAlreadyExistsException: 'Pick another name, or describe the existing one.',
  VersionConflictException: 'Someone changed it meanwhile: describe it again and retry with the new version.',
  InvalidSignatureException:
    'The credentials do not match this server (or the clock is off by more than 5 minutes). Check --profile and the credentials file.',
  UnrecognizedClientException:
    'This access key is unknown to the server: check --profile, or create a key with `thingstead keys create`.',
  AccessDeniedException: 'This key is read-only: use an admin key (--profile) for changes.',
  InvalidQueryException: 'See the fleet-indexing query syntax: field:value, wildcards, [a TO b], AND/OR/NOT.',
};

/** Call the API, turning transport and API failures into messages that say what to do next. */
export async function call(
  conn: SignedFetchOptions,
  method: string,
  path: string,
  request: Parameters<typeof signedFetch>[3] = {},
): Promise<any> {
  try {
    return await signedFetch(conn, method, path, request);
  } catch (err) {
    if (err instanceof AwsApiError) {
      const hint = HINTS[err.name];
      throw new CliError(`${err.name}: ${err.message}${hint ? `\n${hint}` : ''}`);
    }
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED')
      throw new CliError(`cannot reach the API at ${conn.endpoint}: is \`thingstead up\` running?`);
    throw err;
  }
}

/** A value as one line of text: objects as JSON. */
const show = (v: unknown): string =>
  typeof v === 'object' ? JSON.stringify(v) : `${v as string | number | boolean}`;

/** Print rows as an aligned table (columns from the first row's keys unless given). */
export function printTable(rows: Array<Record<string, unknown>>, columns?: string[]): void {
  if (rows.length === 0) {
    console.log('(none)');
    return;
  }
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === undefined || v === null ? '' : show(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

/** Print key/value pairs of one resource. */
export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined || k === '$metadata') continue;
    console.log(`${k.padEnd(width)}  ${show(v)}`);
  }
}

/** `k=v` pairs from repeated --attr flags. */
export function parseAttributes(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0)
      throw new CliError(`--attr ${p}: expected name=value (an empty value removes the attribute).`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Fetch every page of a token-paginated list (up to `max` items). */
export async function listAll(
  conn: SignedFetchOptions,
  path: string,
  key: string,
  query: Record<string, string | number | boolean | undefined>,
  max: number,
): Promise<any[]> {
  const items: any[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call(conn, 'GET', path, {
      query: { ...query, nextToken, maxResults: Math.min(250, max - items.length) },
    });
    items.push(...((page[key] as any[]) ?? []));
    nextToken = page.nextToken;
  } while (nextToken && items.length < max);
  return items;
}

/** Flags of a command and its parent group, merged (commander's optsWithGlobals). */
export type CommandFlags = ConnectionFlags & Record<string, any>;

/**
 * A commander action that receives the resolved API connection, the merged flags and the positional
 * arguments, in that order.
 * @example .action(withConnection(async (conn, flags, name) => { ... }))
 */
export function withConnection(
  fn: (conn: SignedFetchOptions, flags: CommandFlags, ...args: string[]) => Promise<void>,
) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const flags = cmd.optsWithGlobals<CommandFlags>();
    const positional = args.slice(0, -2).filter((a) => typeof a === 'string');
    await fn(resolveConnection(flags), flags, ...positional);
  };
}
