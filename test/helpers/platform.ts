import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ConfigInput } from '../../src/config/index.js';
import { createPlatform, type Platform } from '../../src/platform/index.js';
import type { AuthHooks } from '../../src/mqtt/index.js';

export interface TestPlatform extends Platform {
  /** Stop and delete the data directory (unless keepData). */
  stop(): Promise<void>;
}

/**
 * Start a whole platform in-process on free ports (HTTP, plain MQTT, TLS) with a fresh data directory.
 * Anonymous loopback access is on unless overridden, so MQTT tests can connect without certificates.
 */
export async function startTestPlatform(
  overrides: ConfigInput = {},
  options: { dataDir?: string; keepData?: boolean; hooks?: AuthHooks } = {},
): Promise<TestPlatform> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'thingstead-test-'));
  const o = overrides as Record<string, any>;
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      dataDir,
      logLevel: o.logLevel ?? (process.env.TEST_LOG_LEVEL as never) ?? 'silent',
      http: { port: 0, ...(o.http ?? {}) },
      mqtt: { port: 0, tlsPort: 0, allowAnonymous: true, ...(o.mqtt ?? {}) },
    },
  });
  const platform = await createPlatform(config, { hooks: options.hooks });
  return Object.assign(Object.create(platform) as Platform, platform, {
    async stop() {
      await platform.close();
      if (!options.keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** Poll until `check` returns a truthy value (never sleep-and-hope). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
