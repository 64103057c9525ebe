/**
 * What every bench script shares: its command-line options, the statistics it reports, and the machine it
 * quotes beside every figure. One copy here instead of one per script.
 */
import { cpus, loadavg } from 'node:os';

/** `--name value` or `--name=value` from the command line, else `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : def;
}

/** Is `--name` on the command line? */
export const flag = (name: string): boolean => process.argv.includes(`--${name}`);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The median (the lower middle value of an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

/** The p-th percentile (nearest rank, p in 0..100) of `values`, in any order; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
}

/** The machine a figure was measured on: quote it with every figure. */
export function machine() {
  return {
    cores: cpus().length,
    model: cpus()[0]?.model ?? '',
    node: process.version,
    loadAtStart: loadavg()[0]!.toFixed(1),
    at: new Date().toISOString(),
  };
}
