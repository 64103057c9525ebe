import { spawn } from 'node:child_process';

/**
 * Run an install or rollback hook: `command` through `/bin/sh -c`, with the update described in the
 * environment (THINGSTEAD_OTA_FILE, _VERSION, _SHA256, _PREVIOUS_VERSION, _JOB_ID). Resolves with the exit
 * code (a signal or a timeout counts as failure, code null) and the last lines of its output.
 */
export function runHook(
  command: string,
  env: Record<string, string>,
  timeoutMs = 600_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (c: Buffer) => {
      output = (output + c.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}
