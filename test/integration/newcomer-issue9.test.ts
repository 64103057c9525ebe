import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor } from '../helpers/platform.js';

/**
 * Regressions for issue 9 ("what a newcomer tripped over"), run as a user runs them: the built CLI
 * (`node dist/cli/main.js`, built by pretest) as a child process.
 */

const run = promisify(execFile);
const cli = join(process.cwd(), 'dist', 'cli', 'main.js');
const children = new Set<ChildProcess>();
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Environment for a child: no THINGSTEAD_* from the caller (they would be configuration). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('THINGSTEAD_')) env[k] = v;
  return { ...env, ...extra };
}

interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function up(args: string[], env: Record<string, string>): Up {
  const child = spawn(process.execPath, [cli, 'up', '--http-port', '0', '--log-level', 'warn', ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': all output has been read by then.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { child, output: () => out, exited };
}

async function stop(u: Up): Promise<number | null> {
  u.child.kill('SIGTERM');
  return u.exited;
}

afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('issue 9: thingstead up', () => {
  it('THINGSTEAD_MQTT_TLS_PORT=off and --mqtt-tls-port off / --mqtt-port off turn the listeners off', async () => {
    for (const [args, env] of [
      [[], { THINGSTEAD_MQTT_TLS_PORT: 'off' }],
      [['--mqtt-tls-port', 'off', '--mqtt-port', 'off'], {}],
    ] as const) {
      const dataDir = tempDir('ts-issue9-off-');
      const u = up([...args], { ...env, THINGSTEAD_DATA_DIR: dataDir });
      await waitFor(
        () => u.output().includes('CA certificate') || u.child.exitCode !== null,
        20_000,
        'banner',
      );
      expect(u.output()).toMatch(/MQTT over TLS\s+off\n/);
      expect(JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).mqttsPort).toBeNull();
      expect(await stop(u)).toBe(0);
    }
  });

  it('the banner names only what exists (the web console once built) and prints commands that run (npx thingstead)', async () => {
    const dataDir = tempDir('ts-issue9-banner-');
    const u = up(['--mqtt-tls-port', '0', '--mqtt-port', '0', '--allow-anonymous'], {
      THINGSTEAD_DATA_DIR: dataDir,
    });
    await waitFor(() => u.output().includes('Try it') || u.child.exitCode !== null, 20_000, 'banner');
    const banner = u.output();
    expect(banner).toMatch(/API \(AWS IoT\)\s+http:\/\/127\.0\.0\.1:\d+/);
    // The console is served at / on the API port (issue 13); the line says how to sign in.
    expect(banner).toMatch(/Web console\s+http:\/\/127\.0\.0\.1:\d+\/\s+\(sign in with an access key/);
    expect(banner).toContain('npx thingstead onboard my-device');
    expect(banner).not.toMatch(/^ {2}thingstead /m);
    // dev mode: the banner says the TLS port still wants a certificate (and it does, see below)
    expect(banner).toMatch(/TLS port still requires a client certificate/);
    expect(await stop(u)).toBe(0);
  });

  it('a second up on the same data directory refuses, naming the running one; a stale lock is taken over', async () => {
    const dataDir = tempDir('ts-issue9-lock-');
    const first = up(['--mqtt-tls-port', '0'], { THINGSTEAD_DATA_DIR: dataDir });
    await waitFor(() => first.output().includes('CA certificate'), 20_000, 'first banner');
    const endpointsBefore = readFileSync(join(dataDir, 'endpoints.json'), 'utf8');
    const http = JSON.parse(endpointsBefore).http as string;

    const second = up(['--mqtt-tls-port', '0'], { THINGSTEAD_DATA_DIR: dataDir });
    expect(await second.exited).toBe(3);
    expect(second.output()).toContain(`another thingstead (pid ${first.child.pid}`);
    expect(second.output()).toContain(http);
    expect(second.output()).toMatch(/stop it first \(kill \d+\), or start this one with its own --data-dir/);
    expect(second.output()).not.toContain('Thingstead is up');
    expect(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).toBe(endpointsBefore);
    expect(first.child.exitCode).toBeNull(); // the first one is untouched

    // A crash leaves the lock behind; the next start takes it over and says so.
    first.child.kill('SIGKILL');
    await first.exited;
    expect(JSON.parse(readFileSync(join(dataDir, 'thingstead.lock'), 'utf8')).pid).toBe(first.child.pid);
    const third = up(['--mqtt-tls-port', '0'], { THINGSTEAD_DATA_DIR: dataDir });
    await waitFor(() => third.output().includes('CA certificate') || third.child.exitCode !== null, 20_000);
    expect(third.output()).toMatch(
      new RegExp(
        `taking over .*thingstead\\.lock: the thingstead that held it \\(pid ${first.child.pid}\\) is not running`,
      ),
    );
    expect(third.output()).toContain('Thingstead is up');
    expect(await stop(third)).toBe(0);
  });

  it('an unknown nested key in the config file is an error naming its path, with the others, exit 2', async () => {
    const dir = tempDir('ts-issue9-cfg-');
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ mqtt: { prot: 1883 }, limits: { maxInflight: 0 } }));
    const u = up(['--config', file], { THINGSTEAD_DATA_DIR: join(dir, 'data'), THINGSTEAD_NOPE: '1' });
    expect(await u.exited).toBe(2);
    expect(u.output()).toMatch(/mqtt\.prot: unknown setting/);
    expect(u.output()).toMatch(/limits\.maxInflight/);
    expect(u.output()).toMatch(/THINGSTEAD_NOPE: unknown setting/);
  });
});

describe('issue 9: anonymous dev mode leaves the TLS port certificate-only', () => {
  it('a TLS client without a certificate is refused while anonymous plain MQTT works', async () => {
    const platform = await startTestPlatform({ mqtt: { allowAnonymous: true } });
    try {
      const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${platform.endpoints.mqttPort}`, {
        reconnectPeriod: 0,
      });
      await plain.endAsync();
      const refused = await mqtt
        .connectAsync(`mqtts://127.0.0.1:${platform.endpoints.mqttsPort}`, {
          ca: platform.tls.caPem,
          protocolVersion: 5,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        })
        .then(
          async (c) => {
            await c.endAsync();
            return null;
          },
          (err: Error & { code?: number }) => err,
        );
      expect(refused).not.toBeNull();
      expect(refused!.code).toBe(0x87); // Not authorized
    } finally {
      await platform.stop();
    }
  });
});

describe('issue 9: the CLI runs as the README says', () => {
  it('npx thingstead --help works in the checkout (bin -> dist/cli/main.js)', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.bin.thingstead).toBe('dist/cli/main.js');
    expect(pkg.scripts.prepare).toMatch(/build/); // built by npm ci on a fresh clone
    const r = await run('npx', ['--no-install', 'thingstead', '--help'], {
      env: cleanEnv({}),
      timeout: 150_000,
    });
    expect(r.stdout).toMatch(/Usage: thingstead/);
    expect(r.stdout).toMatch(/onboard/);
  }, 180_000); // npx installs the checkout into its cache on first use, which runs `prepare` (the whole build)

  it('every thingstead command line in the README is written so it runs (npx thingstead)', () => {
    const readme = readFileSync('README.md', 'utf8');
    const bare = readme
      .split('\n')
      .filter((l) =>
        /(?<!npx )(?<![\w/.-])thingstead (things|types|groups|keys|policy|onboard|rules|ts|up)\b/.test(l),
      );
    expect(bare).toEqual([]);
  });
});
