#!/usr/bin/env node
/**
 * The CLI context: the `thingstead` binary (`up`, the registry commands, `keys`, `certs`, `policy`, `onboard`,
 * `rules`, `ts`, `jobs`, `shadow`, `ota`, `agent`; the table is commands.ts). Thin commands: `up` loads the
 * config and calls `createPlatform`; the others call the HTTP API with a credentials profile, except `keys`,
 * which writes access keys to the database directly and announces the change on the change-event channel.
 * An edge: no context imports it (so it has no index.ts; this file is its entry). Only the module of the
 * command being run is loaded (commands.ts `modulesFor`), so `thingstead shadow get` does not load the platform.
 * Imports: api, config, errors, events, identity, platform, policy, store.
 */
import { Command } from 'commander';
import { modulesFor } from './commands.js';
import { CliError } from './connection.js';

/** The `thingstead` binary: thin commands over the platform library and the HTTP API. */
const program = new Command('thingstead')
  .description('Thingstead: a self-hosted, AWS IoT Core-compatible IoT platform.')
  .showHelpAfterError('(run with --help for usage)');

async function main(): Promise<void> {
  const registers = await Promise.all(modulesFor(process.argv.slice(2)).map((c) => c.load()));
  for (const register of registers) register(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  console.error(`thingstead: ${(err as Error).message}`);
  process.exit(err instanceof CliError ? 2 : 1);
});
