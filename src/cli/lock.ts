import { existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One `thingstead up` per data directory. `<dataDir>/thingstead.lock` holds the running process's pid;
 * it is created exclusively (O_EXCL), so two processes starting at once cannot both win. A lock left by
 * a process that is no longer running is taken over (and said so). Released on exit.
 */

export const LOCK_FILE = 'thingstead.lock';

export interface LockHolder {
  pid: number;
  startedAt?: string;
}

export type LockResult =
  | { ok: true; file: string; release: () => void; tookOverFrom?: LockHolder }
  | { ok: false; file: string; holder: LockHolder };

function isRunning(pid: number): boolean {
  if (pid === process.pid) return false; // a pid reused by us after a restart (e.g. pid 1 in a container)
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user, so it is running.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' && Number.isInteger(h.pid) && h.pid > 0
      ? { pid: h.pid, startedAt: h.startedAt }
      : null;
  } catch {
    return null; // unreadable or half-written: treated as stale
  }
}

/** Take the data directory's lock, or say who holds it. */
export function acquireDataDirLock(dataDir: string): LockResult {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, LOCK_FILE);
  let tookOverFrom: LockHolder | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      if (holder && isRunning(holder.pid)) return { ok: false, file, holder };
      tookOverFrom = holder ?? { pid: 0 };
      try {
        unlinkSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      continue;
    }
    const me: LockHolder = { pid: process.pid, startedAt: new Date().toISOString() };
    writeSync(fd, JSON.stringify(me) + '\n');
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      // Only our own lock: never remove one a successor took over.
      if (existsSync(file) && readHolder(file)?.pid === process.pid) unlinkSync(file);
    };
    process.once('exit', release);
    return { ok: true, file, release, tookOverFrom };
  }
  // Another process keeps re-creating it: treat as held.
  return { ok: false, file, holder: readHolder(file) ?? { pid: 0 } };
}
