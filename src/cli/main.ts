#!/usr/bin/env node
/**
 * The CLI context: the `thingstead` binary (`up`, the registry commands, `keys`, `certs`, `policy`, `onboard`,
 * `rules`, `ts`, `jobs`, `shadow`, `ota`, `agent`). Thin commands: `up` loads the config and calls `createPlatform`; the
 * others call the HTTP API with a credentials profile, except `keys`, which writes access keys to the database directly
 * and announces the change on the change-event channel. An edge: no context imports it (so it has no
 * index.ts; this file is its entry).
 * Imports: api, config, errors, events, identity, platform, policy, store.
 */
import { Command } from 'commander';
import { CliError } from './connection.js';
import { registerKeys } from './keys.js';
import { registerRegistryCommands } from './registry.js';
import { registerUp } from './up.js';
import { registerPolicy } from './policy.js';
import { registerCerts } from './certs.js';
import { registerOnboard } from './onboard.js';
import { registerRules } from './rules.js';
import { registerTimeseries } from './ts.js';
import { registerJobs } from './jobs.js';
import { registerShadow } from './shadow.js';
import { registerOta } from './ota.js';
import { registerAgent } from './agent.js';

/** The `thingstead` binary: thin commands over the platform library and the HTTP API. */
const program = new Command('thingstead')
  .description('Thingstead: a self-hosted, AWS IoT Core-compatible IoT platform.')
  .showHelpAfterError('(run with --help for usage)');
registerUp(program);
registerRegistryCommands(program);
registerKeys(program);
registerCerts(program);
registerPolicy(program);
registerOnboard(program);
registerRules(program);
registerTimeseries(program);
registerJobs(program);
registerShadow(program);
registerOta(program);
registerAgent(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`thingstead: ${(err as Error).message}`);
  process.exit(err instanceof CliError ? 2 : 1);
});
