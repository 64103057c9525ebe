import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ConfigInput } from '../../src/config/index.js';
import { createPlatform, type Platform } from '../../src/platform/index.js';
import type { AuthHooks } from '../../src/mqtt/index.js';
import type { Logger } from '../../src/observability/index.js';

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
  options: {
    dataDir?: string;
    keepData?: boolean;
    hooks?: AuthHooks;
    logger?: Logger;
    /** The metering clock (connection minutes, hours, quota buckets). */
    clock?: () => number;
  } = {},
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
  const platform = await createPlatform(config, {
    hooks: options.hooks,
    logger: options.logger,
    clock: options.clock,
  });
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

/** Sum of the samples of `name` on GET /metrics whose label text matches `labelRe`. */
export async function scrapeMetric(platform: Platform, name: string, labelRe?: RegExp): Promise<number> {
  const text = await (await fetch(`${platform.endpoints.http}/metrics`)).text();
  // A renamed metric must fail the test, not read as 0.
  if (!text.includes(`# TYPE ${name} `)) throw new Error(`metric ${name} is not exported on /metrics`);
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name || (labelRe && !labelRe.test(m[2] ?? ''))) continue;
    total += Number(m[3]);
  }
  return total;
}

/**
 * A device certificate (EC P-256, ACTIVE) with a policy allowing everything attached: for tests that need a
 * client certificate on the TLS port (which asks for one also in anonymous dev mode) and test nothing else.
 */
export async function allowAllDevice(
  platform: Platform,
  policyName: string,
): Promise<{ cert: string; key: string; certificateId: string }> {
  const c = await platform.security.certificates.createKeysAndCertificate({
    setAsActive: true,
    keyType: 'ec-p256',
  });
  await platform.security.policies.createPolicy(
    policyName,
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
    }),
  );
  await platform.security.policies.attachPolicy(
    policyName,
    platform.security.certificates.certificateArn(c.certificateId),
  );
  return { cert: c.certificatePem, key: c.privateKeyPem, certificateId: c.certificateId };
}
