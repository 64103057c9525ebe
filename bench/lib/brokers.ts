/**
 * Start and stop the brokers under test, each in its own process on a free loopback port:
 * Thingstead (`node dist/cli/main.js up`), Mosquitto (/usr/sbin/mosquitto with a generated config),
 * Aedes (plain net server) and the ceiling forwarder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BROKERS = ['thingstead', 'mosquitto', 'aedes', 'ceiling'] as const;
export type BrokerName = (typeof BROKERS)[number];

export interface RunningBroker {
  readonly name: BrokerName;
  readonly port: number;
  readonly pid: number;
  /** Resident set size of the broker process in KiB (/proc/<pid>/status VmRSS). */
  rssKb(): number;
  alive(): boolean;
  /** Last lines the process wrote to stderr, for error reports. */
  stderrTail(): string;
  stop(): Promise<void>;
  /** Send SIGTERM now, without waiting (for signal handlers that may not get to await). */
  kill(): void;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export function readRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function wrap(name: BrokerName, child: ChildProcess, port: number): RunningBroker {
  let tail = '';
  let exited = false;
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  const exitP = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  return {
    name,
    port,
    pid: child.pid!,
    rssKb: () => readRssKb(child.pid!),
    alive: () => !exited,
    stderrTail: () => tail,
    kill() {
      if (!exited) child.kill('SIGTERM');
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitP;
      clearTimeout(t);
    },
  };
}

/** A TS entry in bench/servers, run with the same loader (tsx) as this process; prints {"port":N}. */
async function startNodeServer(name: BrokerName, file: string): Promise<RunningBroker> {
  const child = spawn(process.execPath, [...process.execArgv, join(repoRoot, 'bench/servers', file)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    setTimeout(() => reject(new Error(`${name} did not start`)), 20_000);
  });
  return wrap(name, child, port);
}

async function startMosquitto(tmp: string): Promise<RunningBroker> {
  const port = await freePort();
  const dir = join(tmp, 'mosquitto');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_connections -1',
      'max_queued_messages 1000000',
      'max_queued_bytes 0',
      'max_inflight_messages 0',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const child = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const b = wrap('mosquitto', child, port);
  await until('mosquitto to listen', 10_000, async () => {
    if (!b.alive()) throw new Error(`mosquitto exited: ${b.stderrTail()}`);
    return (await canConnect(port)) || undefined;
  });
  return b;
}

async function startThingstead(tmp: string): Promise<RunningBroker> {
  const dataDir = join(tmp, 'thingstead');
  mkdirSync(dataDir, { recursive: true });
  const main = join(repoRoot, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error('dist/cli/main.js missing: run `npm run build` first');
  const child = spawn(process.execPath, [main, 'up'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      THINGSTEAD_DATA_DIR: dataDir,
      THINGSTEAD_MQTT_PORT: '0',
      THINGSTEAD_HTTP_PORT: '0',
      THINGSTEAD_MQTT_TLS_PORT: '0',
      THINGSTEAD_ALLOW_ANONYMOUS: 'true',
      THINGSTEAD_LOG_LEVEL: 'warn',
    },
  });
  const b0 = wrap('thingstead', child, 0);
  const port = await until('thingstead endpoints.json', 30_000, () => {
    if (!b0.alive())
      throw new Error(`thingstead exited: ${b0.stderrTail().trim().split('\n').slice(-6).join('\n')}`);
    const file = join(dataDir, 'endpoints.json');
    if (!existsSync(file)) return undefined;
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { mqttPort: number | null }).mqttPort ?? undefined;
    } catch {
      return undefined; // partially written
    }
  });
  return { ...b0, port };
}

export async function startBroker(name: BrokerName, tmp: string): Promise<RunningBroker> {
  switch (name) {
    case 'thingstead':
      return startThingstead(tmp);
    case 'mosquitto':
      return startMosquitto(tmp);
    case 'aedes':
      return startNodeServer('aedes', 'aedes.ts');
    case 'ceiling':
      return startNodeServer('ceiling', 'forwarder.ts');
  }
}
