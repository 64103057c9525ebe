#!/usr/bin/env node
import { Command } from 'commander';
import { registerUp } from './up.js';

/** The `thingstead` binary: thin commands over the platform library and the HTTP API. */
const program = new Command('thingstead')
  .description('Thingstead: a self-hosted, AWS IoT Core-compatible IoT platform.')
  .showHelpAfterError('(run with --help for usage)');
registerUp(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`thingstead: ${(err as Error).message}`);
  process.exit(1);
});
