import type { Command } from 'commander';

/** Adds one module's commands to the program. */
export type Register = (program: Command) => void;

/**
 * Every top-level command of the `thingstead` binary and the module that registers it. main.ts loads only
 * the module of the command being run (the platform behind `up`, the OTA signing code, the agent... are
 * not loaded for `thingstead shadow get`); `--help`, no command or an unknown one load them all.
 * commands.test.ts checks that each module registers exactly the names listed here.
 * To add a command: one line here, nothing in main.ts.
 */
export const COMMANDS: ReadonlyArray<{
  readonly names: readonly string[];
  readonly load: () => Promise<Register>;
}> = [
  { names: ['up'], load: async () => (await import('./up.js')).registerUp },
  {
    names: ['things', 'types', 'groups'],
    load: async () => (await import('./registry.js')).registerRegistryCommands,
  },
  { names: ['keys'], load: async () => (await import('./keys.js')).registerKeys },
  { names: ['certs'], load: async () => (await import('./certs.js')).registerCerts },
  { names: ['policy'], load: async () => (await import('./policy.js')).registerPolicy },
  { names: ['onboard'], load: async () => (await import('./onboard.js')).registerOnboard },
  { names: ['rules'], load: async () => (await import('./rules.js')).registerRules },
  { names: ['ts'], load: async () => (await import('./ts.js')).registerTimeseries },
  { names: ['jobs'], load: async () => (await import('./jobs.js')).registerJobs },
  { names: ['shadow'], load: async () => (await import('./shadow.js')).registerShadow },
  { names: ['ota'], load: async () => (await import('./ota.js')).registerOta },
  { names: ['agent'], load: async () => (await import('./agent.js')).registerAgent },
  { names: ['usage', 'quota'], load: async () => (await import('./usage.js')).registerUsage },
  { names: ['provision'], load: async () => (await import('./provision.js')).registerProvision },
  { names: ['gateway'], load: async () => (await import('./gateway.js')).registerGateway },
  { names: ['sim'], load: async () => (await import('./sim.js')).registerSim },
];

/**
 * The modules to load for `argv` (process.argv without node and the script): the one whose command is the
 * first argument, or every module when that is an option (`--help`, `-V`), missing or unknown.
 */
export function modulesFor(argv: readonly string[]): ReadonlyArray<(typeof COMMANDS)[number]> {
  const first = argv[0];
  const one =
    first === undefined || first.startsWith('-') ? undefined : COMMANDS.find((c) => c.names.includes(first));
  return one ? [one] : COMMANDS;
}
