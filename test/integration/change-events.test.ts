import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  CreatePolicyCommand,
  CreateThingGroupCommand,
  DetachPolicyCommand,
  IoTClient,
  RemoveThingFromThingGroupCommand,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { connectTls, createDevice, type Device } from './security-helpers.js';

/**
 * Issue 9: changes reach live authorization as change events, not by polling. Platform A serves a device
 * over mutual TLS; the change is made three ways:
 * - through A's API (@aws-sdk/client-iot): felt in the same process, budget 100 ms;
 * - through the built CLI (`node dist/cli/main.js`), a child process: `certs revoke`, `policy detach` and
 *   `groups remove` go through A's API, and the device must already be gone (or within 100 ms) when the
 *   child exits (the child's start-up, ~0.5 s, is not the platform's latency); `thingstead keys delete`,
 *   the CLI's one direct database path, publishes over LISTEN/NOTIFY;
 * - through platform B, another platform on the same PostgreSQL schema: felt through LISTEN/NOTIFY,
 *   budget 1 s.
 * "Felt" is the device being disconnected (the change removes iot:Connect or the certificate itself).
 * Run `npm run build` first (the CLI cases run dist/).
 */

const pg = await postgresAvailable('change-event latency test');
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

type Change = 'revoke' | 'detach' | 'ungroup';

describe.skipIf(!pg)('change events reach a connected device (issue 9)', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let dataDir: string;
  let a: TestPlatform;
  let b: TestPlatform;
  let key: { accessKeyId: string; secretAccessKey: string };
  let iotA: IoTClient;
  let iotB: IoTClient;
  const figures: string[] = [];
  const A = () => `arn:aws:iot:${a.config.region}:${a.config.accountId}`;
  const client = (p: TestPlatform) =>
    new IoTClient({ endpoint: p.endpoints.http, region: p.config.region, credentials: key, maxAttempts: 1 });

  beforeAll(async () => {
    schema = await freshSchema('events');
    dataDir = mkdtempSync(join(tmpdir(), 'change-events-'));
    const config = { databaseUrl: schema.url, mqtt: { allowAnonymous: false } };
    a = await startTestPlatform(config, { dataDir });
    b = await startTestPlatform(config, { dataDir });
    key = await a.credentials.create('events', 'admin');
    iotA = client(a);
    iotB = client(b);
  });
  afterAll(async () => {
    console.log(
      `change-event latency (${process.arch}, Node ${process.version}):\n  ${figures.join('\n  ')}`,
    );
    await a?.stop();
    await b?.stop();
    await schema?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A device on A whose iot:Connect comes from a policy on its certificate, or on its thing's group. */
  async function device(name: string, change: Change): Promise<{ dev: Device; c: MqttClient }> {
    const statements = [
      {
        Effect: 'Allow',
        Action: ['iot:Connect', 'iot:Publish'],
        Resource: [`${A()}:client/*`, `${A()}:topic/*`],
      },
    ];
    const dev = await createDevice(
      iotA,
      name,
      change === 'ungroup' ? undefined : { name: `${name}-p`, statements },
    );
    if (change === 'ungroup') {
      await iotA.send(new CreateThingGroupCommand({ thingGroupName: `${name}-g` }));
      await iotA.send(
        new CreatePolicyCommand({
          policyName: `${name}-p`,
          policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }),
        }),
      );
      await iotA.send(
        new AttachPolicyCommand({ policyName: `${name}-p`, target: `${A()}:thinggroup/${name}-g` }),
      );
      await iotA.send(new AddThingToThingGroupCommand({ thingGroupName: `${name}-g`, thingName: name }));
    }
    const c = await waitFor(() => connectTls(a, dev, name).catch(() => undefined), 5000, `${name} connects`);
    return { dev, c };
  }

  function closedAt(c: MqttClient): Promise<number> {
    return new Promise((resolve) => c.once('close', () => resolve(performance.now())));
  }

  async function apply(iot: IoTClient, name: string, dev: Device, change: Change) {
    if (change === 'revoke')
      await iot.send(
        new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }),
      );
    else if (change === 'detach')
      await iot.send(new DetachPolicyCommand({ policyName: `${name}-p`, target: dev.certificateArn }));
    else
      await iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: `${name}-g`, thingName: name }));
  }

  function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? -1, out }));
    });
  }

  for (const change of ['revoke', 'detach', 'ungroup'] as const) {
    it(`${change} through A's API: the device on A feels it in under 100 ms`, async () => {
      const name = `api-${change}`;
      const { dev, c } = await device(name, change);
      const closed = closedAt(c);
      const t0 = performance.now();
      await apply(iotA, name, dev, change);
      const ms = (await closed) - t0;
      figures.push(`same process, ${change}: ${ms.toFixed(1)} ms (API call included)`);
      expect(ms).toBeLessThan(100);
    });

    it(`${change} through platform B (same PostgreSQL): the device on A feels it in under 1 s`, async () => {
      const name = `peer-${change}`;
      const { dev, c } = await device(name, change);
      const closed = closedAt(c);
      const t0 = performance.now();
      await apply(iotB, name, dev, change);
      const ms = (await closed) - t0;
      figures.push(`across processes (B -> A), ${change}: ${ms.toFixed(1)} ms (API call on B included)`);
      expect(ms).toBeLessThan(1000);
    });
  }

  const apiEnv = () => ({
    AWS_ACCESS_KEY_ID: key.accessKeyId,
    AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    AWS_REGION: a.config.region,
  });

  /** Run a CLI change against A's API; the disconnect, measured from the child's exit (<= 0: before it). */
  async function cliChange(name: string, c: MqttClient, args: string[]): Promise<number> {
    const closed = closedAt(c);
    const spawned = performance.now();
    const r = await cli([...args, '--endpoint-url', a.endpoints.http], apiEnv());
    const exited = performance.now();
    expect(r, r.out).toMatchObject({ code: 0 });
    const at = await Promise.race([closed, new Promise<number>((res) => setTimeout(() => res(NaN), 1000))]);
    const ms = at - exited;
    figures.push(
      `CLI through A's API (${args.slice(0, 2).join(' ')}): disconnected ${(at - spawned).toFixed(0)} ms after spawning the CLI, ${ms.toFixed(1)} ms after its exit (negative: before)`,
    );
    expect(ms, `${name}: disconnect after the CLI exited`).toBeLessThan(100);
    return ms;
  }

  it('thingstead groups remove (CLI, through the API): the device is dropped by the time the command returns', async () => {
    const name = 'cli-ungroup';
    const { c } = await device(name, 'ungroup');
    await cliChange(name, c, ['groups', 'remove', `${name}-g`, name]);
  });

  it('thingstead certs revoke (CLI, through the API): the device is dropped by the time the command returns, and refused after', async () => {
    const name = 'cli-revoke';
    const { dev, c } = await device(name, 'revoke');
    // The readable forms first: the certificate is listed and described by a unique id prefix.
    const listed = await cli(['certs', 'list', '--endpoint-url', a.endpoints.http], apiEnv());
    expect(listed.out).toMatch(/^ID\s+STATUS\s+MODE\s+CREATED$/m);
    expect(listed.out).toContain(`${dev.certificateId}  ACTIVE`);
    const described = await cli(
      ['certs', 'describe', dev.certificateId.slice(0, 10), '--json', '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(JSON.parse(described.out).certificateDescription).toMatchObject({
      certificateId: dev.certificateId,
      status: 'ACTIVE',
    });
    await cliChange(name, c, ['certs', 'revoke', dev.certificateId]);
    const d = await cli(
      ['certs', 'describe', dev.certificateArn, '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(d.out).toMatch(/status\s+REVOKED/);
    await expect(connectTls(a, dev, name)).rejects.toThrow();
  });

  it('thingstead policy detach (CLI, through the API): the device is dropped by the time the command returns, and refused after', async () => {
    const name = 'cli-detach';
    const { dev, c } = await device(name, 'detach');
    const attached = await cli(
      ['policy', 'list', '--target', dev.certificateId, '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(attached.out).toMatch(new RegExp(`^${name}-p\\s+arn:`, 'm'));
    await cliChange(name, c, ['policy', 'detach', `${name}-p`, '--target', dev.certificateArn]);
    const after = await cli(
      ['policy', 'list', '--target', dev.certificateArn, '--json', '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(JSON.parse(after.out).policies).toEqual([]);
    await expect(connectTls(a, dev, name)).rejects.toThrow();
    // Attach it back with the CLI: the device may connect again.
    const r = await cli(
      ['policy', 'attach', `${name}-p`, '--target', dev.certificateId, '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(r, r.out).toMatchObject({ code: 0 });
    const again = await connectTls(a, dev, name);
    await again.endAsync();
  });

  it('thingstead certs and policy: --help lists the commands; mistakes say what to do next', async () => {
    const help = await cli(['certs', '--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['list', 'describe', 'revoke', 'deactivate', 'activate'])
      expect(help.out).toContain(cmd);
    const policyHelp = await cli(['policy', '--help']);
    for (const cmd of ['list', 'attach', 'detach', 'test', 'validate']) expect(policyHelp.out).toContain(cmd);
    const unknown = await cli(
      ['certs', 'revoke', 'f'.repeat(64), '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.out).toContain('thingstead certs list');
    const bad = await cli(['certs', 'describe', 'not-an-id', '--endpoint-url', a.endpoints.http], apiEnv());
    expect(bad).toMatchObject({ code: 2 });
    expect(bad.out).toMatch(/not a certificate id.*\n.*thingstead certs list/);
    const noPolicy = await cli(
      [
        'policy',
        'detach',
        'no-such-policy',
        '--target',
        `${A()}:cert/${'e'.repeat(64)}`,
        '--endpoint-url',
        a.endpoints.http,
      ],
      apiEnv(),
    );
    expect(noPolicy.code, noPolicy.out).not.toBe(0);
    const noTarget = await cli(
      ['policy', 'attach', 'p', '--target', 'floor-1', '--endpoint-url', a.endpoints.http],
      apiEnv(),
    );
    expect(noTarget).toMatchObject({ code: 2 });
    expect(noTarget.out).toContain('thingstead groups list');
  });

  it('thingstead keys delete (CLI, direct to PostgreSQL): MQTT connections with that key drop in under 1 s', async () => {
    const k = await a.credentials.create('mqtt-user', 'admin');
    const c = await mqtt.connectAsync(a.endpoints.mqtt!, {
      clientId: 'key-user',
      username: k.accessKeyId,
      password: k.secretAccessKey,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const closed = closedAt(c);
    const spawned = performance.now();
    const r = await cli(['keys', 'delete', 'mqtt-user', '--data-dir', dataDir, '--database-url', schema.url]);
    const exited = performance.now();
    expect(r).toMatchObject({ code: 0 });
    const at = await closed;
    const ms = at - exited;
    figures.push(
      `CLI direct path (keys delete) -> A: disconnected ${(at - spawned).toFixed(0)} ms after spawning the CLI, ${ms.toFixed(1)} ms after its exit (negative: before)`,
    );
    expect(ms).toBeLessThan(1000);
    expect(await a.credentials.lookup(k.accessKeyId)).toBeUndefined();
  });
});
