import { Command } from 'commander';
import { vi } from 'vitest';
import type { Register } from '../../src/cli/commands.js';

/**
 * Run `thingstead <args> --data-dir <dataDir>` in-process with the given command modules registered, as a
 * user runs it (endpoint and credentials found in the data directory). Everything printed to console.log
 * and stdout is captured; a failing command resolves with its error rather than exiting.
 */
export async function runCli(
  registers: readonly Register[],
  dataDir: string,
  args: readonly string[],
): Promise<{ out: string; error?: Error }> {
  const program = new Command('thingstead').exitOverride();
  for (const register of registers) register(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const write = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: unknown) => (lines.push(String(chunk)), true));
  try {
    await program.parseAsync(['node', 'thingstead', ...args, '--data-dir', dataDir]);
    return { out: lines.join('\n') };
  } catch (error) {
    return { out: lines.join('\n'), error: error as Error };
  } finally {
    spy.mockRestore();
    write.mockRestore();
  }
}
