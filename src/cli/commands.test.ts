import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS, modulesFor } from './commands.js';

describe('the command table', () => {
  it('lists exactly the top-level commands each module registers, each name once', async () => {
    const seen: string[] = [];
    for (const entry of COMMANDS) {
      const program = new Command('thingstead');
      (await entry.load())(program);
      expect(program.commands.map((c) => c.name()).sort()).toEqual([...entry.names].sort());
      seen.push(...entry.names);
    }
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('loads one module for a known command, all of them for help, no command or an unknown one', () => {
    expect(modulesFor(['shadow', 'get', 't1']).map((c) => c.names)).toEqual([['shadow']]);
    expect(modulesFor(['groups', 'list'])).toHaveLength(1);
    for (const argv of [[], ['--help'], ['-V'], ['shadwo'], ['help', 'shadow']])
      expect(modulesFor(argv), argv.join(' ')).toBe(COMMANDS);
  });
});
