import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

describe('platform in-process', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform();
  });
  afterAll(async () => {
    await platform?.stop();
  });

  it('writes the bound ports to <data dir>/endpoints.json', () => {
    const written = JSON.parse(readFileSync(join(platform.endpoints.dataDir, 'endpoints.json'), 'utf8'));
    expect(written.httpPort).toBe(platform.endpoints.httpPort);
    expect(written.mqttPort).toBeGreaterThan(0);
    expect(written.mqttsPort).toBeGreaterThan(0);
    expect(written.ws).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
  });

  it('serves /healthz and Prometheus /metrics', async () => {
    const health = await fetch(`${platform.endpoints.http}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    const metrics = await fetch(`${platform.endpoints.http}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/thingstead_process_resident_memory_bytes/);
    expect(text).toMatch(/thingstead_mqtt_/);
  });

  it('keeps secrets readable by the owner only', () => {
    expect(statSync(join(platform.endpoints.dataDir, 'tls', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(platform.endpoints.dataDir, 'tls', 'server.key')).mode & 0o777).toBe(0o600);
    expect(statSync(platform.endpoints.dataDir).mode & 0o077).toBe(0);
  });
});

describe('thingstead up (the binary)', () => {
  const cli = join(process.cwd(), 'dist', 'cli', 'main.js');

  it('prints where every endpoint is, and stops cleanly on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-up-'));
    const child = spawn(
      process.execPath,
      [cli, 'up', '--http-port', '0', '--mqtt-tls-port', '0', '--log-level', 'warn'],
      {
        env: { ...process.env, THINGSTEAD_DATA_DIR: dataDir, THINGSTEAD_MQTT_PORT: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('CA certificate'), 20_000, 'the start banner');
      expect(out).toMatch(/API \(AWS IoT\)\s+http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/MQTT over TLS\s+mqtts:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/MQTT \(plain\)\s+mqtt:\/\/127\.0\.0\.1:\d+/);
      expect(out).toContain(join(dataDir, 'tls', 'ca.pem'));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('reports every configuration error together and exits 2', async () => {
    const child = spawn(process.execPath, [cli, 'up'], {
      env: { ...process.env, THINGSTEAD_HTTP_PORT: 'nope', THINGSTEAD_MQTT_TLS_PORT: '99999' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/THINGSTEAD_HTTP_PORT/);
    expect(err).toMatch(/THINGSTEAD_MQTT_TLS_PORT/);
  });
});
