import { appendFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { ThingsteadError } from '../errors/index.js';
import { openChangeChannel } from '../events/index.js';
import { credentialsProfile, openCredentialStore, type AccessKeyRole } from '../identity/index.js';
import { openDatabase } from '../store/index.js';
import { CliError, parseCredentialsFile, printTable } from './connection.js';

/**
 * `thingstead keys create|list|delete`: access keys for the AWS-compatible API. Unlike the other commands
 * this one works on the data directory and database directly (the same settings as `thingstead up`),
 * because it manages the very credentials the API requires; it works whether or not the server runs.
 * On PostgreSQL it publishes its change (`accessKey`) so running platforms drop the key at once (and the
 * MQTT connections authenticated with it). On SQLite a running platform has no cross-process events: it
 * stops accepting the key within its 2 s credential cache, and its open MQTT connections stay until they
 * reconnect (src/events/index.ts).
 */

interface KeyFlags {
  dataDir?: string;
  databaseUrl?: string;
  config?: string;
  json?: boolean;
}

async function withStore<T>(
  flags: KeyFlags,
  fn: (store: Awaited<ReturnType<typeof openCredentialStore>>, dataDir: string, region: string) => Promise<T>,
) {
  const overrides: Record<string, unknown> = {};
  if (flags.dataDir) overrides.dataDir = flags.dataDir;
  if (flags.databaseUrl) overrides.databaseUrl = flags.databaseUrl;
  const config = loadConfig({ file: flags.config, env: process.env, overrides });
  const dataDir = resolve(config.dataDir);
  if (!existsSync(dataDir))
    throw new CliError(
      `data directory ${dataDir} does not exist: run \`thingstead up\` once, or pass --data-dir.`,
    );
  const db = await openDatabase({ dataDir, databaseUrl: config.databaseUrl });
  const events = await openChangeChannel(db);
  try {
    const store = await openCredentialStore({ db, dataDir, events });
    return await fn(store, dataDir, config.region);
  } catch (err) {
    if (err instanceof ThingsteadError) throw new CliError(err.message);
    throw err;
  } finally {
    await events.close();
    await db.close();
  }
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data directory (env THINGSTEAD_DATA_DIR, default ./data)')
    .option(
      '--database-url <url>',
      'postgres://... when the platform runs on PostgreSQL (env THINGSTEAD_DATABASE_URL)',
    )
    .option('-c, --config <file>', 'JSON config file, as for `thingstead up`')
    .option('--json', 'print JSON');
}

export function registerKeys(program: Command): void {
  const keys = storeOptions(
    new Command('keys').description(
      'Manage API access keys (SigV4). Works on the data directory and database directly, since these are the\n' +
        'credentials the API itself requires; run it on the machine (and with the settings) of `thingstead up`.',
    ),
  );
  keys
    .command('create <name>')
    .description('Create a key; the secret is shown once (and saved as a profile with --save).')
    .option('--role <role>', 'admin or read-only', 'admin')
    .option('--save', 'append it as profile [<name>] to <data dir>/credentials (use with --profile <name>)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<KeyFlags & { role: string; save?: boolean }>();
      await withStore(flags, async (store, dataDir, region) => {
        const key = await store.create(name, flags.role as AccessKeyRole);
        if (flags.save) {
          const file = join(dataDir, 'credentials');
          const existing = existsSync(file) ? parseCredentialsFile(readFileSync(file, 'utf8')) : {};
          if (existing[name])
            throw new CliError(
              `profile [${name}] already exists in ${file}; the key was created but not saved.`,
            );
          appendFileSync(file, '\n' + credentialsProfile(name, key, region), { mode: 0o600 });
          chmodSync(file, 0o600);
        }
        if (flags.json) console.log(JSON.stringify(key, null, 2));
        else {
          console.log(`Created ${key.role} key '${key.name}'.`);
          console.log(`  aws_access_key_id     = ${key.accessKeyId}`);
          console.log(`  aws_secret_access_key = ${key.secretAccessKey}`);
          console.log(
            flags.save
              ? `Saved as profile [${name}] in ${join(dataDir, 'credentials')}: use --profile ${name} (or AWS_PROFILE=${name}).`
              : 'The secret is not shown again; store it now (or recreate the key with --save).',
          );
        }
      });
    });
  keys
    .command('list')
    .description('List keys (ids, names, roles; never secrets).')
    .action(async (_o: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<KeyFlags>();
      await withStore(flags, async (store) => {
        const list = await store.list();
        if (flags.json) console.log(JSON.stringify(list, null, 2));
        else
          printTable(
            list.map((k) => ({
              accessKeyId: k.accessKeyId,
              name: k.name,
              role: k.role,
              created: new Date(k.createdAt).toISOString(),
            })),
          );
      });
    });
  keys
    .command('delete <idOrName>')
    .description('Delete a key by access key id or name; requests signed with it fail within seconds.')
    .action(async (idOrName: string, _o: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<KeyFlags>();
      await withStore(flags, async (store) => {
        if (!(await store.delete(idOrName)))
          throw new CliError(`no key with id or name '${idOrName}'; see \`thingstead keys list\`.`);
        console.log(`deleted key ${idOrName}`);
      });
    });
  program.addCommand(keys);
}
