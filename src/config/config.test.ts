import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

describe('config: defaults < file < environment < flags', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.dataDir).toBe('./data');
    expect(c.mqtt.tlsPort).toBe(8883);
    expect(c.mqtt.port).toBeNull(); // plain MQTT off unless asked for
    expect(c.mqtt.host).toBe('127.0.0.1');
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.mqtt.allowAnonymous).toBe(false);
    expect(c.limits.maxPayloadBytes).toBe(128 * 1024);
    expect(Object.isFrozen(c.limits)).toBe(true);
  });

  it('layers file, environment and overrides in that order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ dataDir: '/from-file', http: { port: 1 }, mqtt: { port: 2 } }));
    const c = loadConfig({
      file,
      env: { THINGSTEAD_HTTP_PORT: '3', THINGSTEAD_ALLOW_ANONYMOUS: 'true', THINGSTEAD_MQTT_PORT: '0' },
      overrides: { http: { port: 4 } },
    });
    expect(c.dataDir).toBe('/from-file');
    expect(c.http.port).toBe(4);
    expect(c.mqtt.port).toBe(0);
    expect(c.mqtt.allowAnonymous).toBe(true);
  });

  it('reports every error together, naming the environment variable', () => {
    let error: unknown;
    try {
      loadConfig({
        env: { THINGSTEAD_HTTP_PORT: 'abc', THINGSTEAD_MQTT_TLS_PORT: '70000', THINGSTEAD_NOPE: '1' },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/http\.port \(THINGSTEAD_HTTP_PORT\)/);
    expect(problems).toMatch(/mqtt\.tlsPort \(THINGSTEAD_MQTT_TLS_PORT\)/);
    expect(problems).toMatch(/THINGSTEAD_NOPE: unknown setting/);
  });

  it('leaves THINGSTEAD_TEST_* to the test suite', () => {
    expect(() => loadConfig({ env: { THINGSTEAD_TEST_DATABASE_URL: 'postgres://x' } })).not.toThrow();
  });

  it('rejects unknown keys in the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ htpp: { port: 1 } }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/htpp/);
  });

  // Issue 9: the README offers `off` for the listener ports.
  it('accepts `off` for every listener port the README says can be off (env, flags, file)', () => {
    const c = loadConfig({
      env: {
        THINGSTEAD_MQTT_TLS_PORT: 'off',
        THINGSTEAD_MQTT_PORT: 'OFF',
        THINGSTEAD_DEVICE_HTTPS_PORT: 'off',
      },
    });
    expect(c.mqtt.tlsPort).toBeNull();
    expect(c.mqtt.port).toBeNull();
    expect(c.deviceHttps.port).toBeNull();
    expect(loadConfig({ env: {}, overrides: { mqtt: { tlsPort: 'off' } } }).mqtt.tlsPort).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ mqtt: { tlsPort: 'off', port: null } }));
    expect(loadConfig({ file, env: {} }).mqtt.tlsPort).toBeNull();
    // anything else that is not a port is still an error
    expect(() => loadConfig({ env: { THINGSTEAD_MQTT_TLS_PORT: 'of' } })).toThrow(/mqtt\.tlsPort/);
  });

  // Issue 9: unknown nested keys were stripped silently.
  it('rejects unknown nested keys, naming each key path, together with every other error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        mqtt: { prot: 1883 },
        limits: { maxInflight: 0, maxPayload: 1 },
        rules: { outbox: { maxRow: 1 } },
      }),
    );
    let error: unknown;
    try {
      loadConfig({ file, env: { THINGSTEAD_NOPE: '1' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^mqtt\.prot: unknown setting \(known here: port, host, tlsPort/),
        expect.stringMatching(/^limits\.maxPayload: unknown setting/),
        expect.stringMatching(/^rules\.outbox\.maxRow: unknown setting/),
        expect.stringMatching(/^limits\.maxInflight \(THINGSTEAD_MAX_INFLIGHT\): /),
        expect.stringMatching(/^THINGSTEAD_NOPE: unknown setting/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });
});
