import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  GetThingShadowCommand,
  IoTDataPlaneClient,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * `thingstead shadow get|update|delete|list|history` run as the built binary (`node dist/cli/main.js`, built
 * by `npm run build` / pretest) against a platform in this process, endpoint and admin credentials read from
 * its data directory as a user runs it. What the CLI writes is read back through
 * `@aws-sdk/client-iot-data-plane` and seen by an MQTT.js device subscribed to its delta topic; what the SDK
 * writes the CLI shows. Errors: exit status 2, AWS's exception and message, and the next step.
 */

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const run = promisify(execFile);
/** Each CLI run is a Node start-up (about 1.2 s of CPU): generous per test on a loaded 2-core machine. */
const SLOW = 120_000;
const tmp = mkdtempSync(join(tmpdir(), 'shadow-cli-'));
let p: TestPlatform;
let data: IoTDataPlaneClient;
let device: MqttClient;
const deltas: Array<{ topic: string; body: any }> = [];

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  p = await startTestPlatform({ shadow: { history: true, maxUpdatesPerSecondPerThing: 0 } });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  data = new IoTDataPlaneClient({
    endpoint: p.endpoints.http,
    region: p.config.region,
    credentials: { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! },
    maxAttempts: 1,
  });
  device = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'lamp', reconnectPeriod: 0 });
  device.on('message', (topic, payload) => deltas.push({ topic, body: JSON.parse(payload.toString()) }));
  await device.subscribeAsync('$aws/things/lamp/shadow/update/delta', { qos: 1 });
});
afterAll(async () => {
  await device?.endAsync(true);
  data?.destroy();
  await p?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, '--data-dir', p.endpoints.dataDir], {
      timeout: 30_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const sdkGet = async (thingName: string, shadowName?: string) =>
  JSON.parse(
    Buffer.from((await data.send(new GetThingShadowCommand({ thingName, shadowName }))).payload!).toString(),
  );

test(
  'update --desired reaches the device as a delta and the SDK; get shows the tree with the delta marked',
  async () => {
    const up = await cli(
      'shadow',
      'update',
      'lamp',
      '--desired',
      '{"color":"red","level":{"brightness":80}}',
    );
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^updated lamp, classic shadow: now version 1$/m);
    expect(up.stdout).toMatch(/^delta: color, level\.brightness$/m);
    const delta = await waitFor(() => deltas.find((d) => d.body.version === 1), 5000, 'delta at the device');
    expect(delta.body.state).toEqual({ color: 'red', level: { brightness: 80 } });

    await data.send(
      new UpdateThingShadowCommand({
        thingName: 'lamp',
        payload: Buffer.from(
          JSON.stringify({ state: { reported: { color: 'blue', level: { brightness: 80 } } } }),
        ),
      }),
    );
    const got = await cli('shadow', 'get', 'lamp');
    expect(got.code, got.stderr).toBe(0);
    const lines = got.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 2)).toEqual(['lamp, classic shadow', '  version      2']);
    expect(lines[2]).toMatch(/^ {2}last update {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)$/);
    expect(lines.slice(3)).toEqual([
      'desired',
      '  color: "red"   <- delta',
      '  level:',
      '    brightness: 80',
      'reported',
      '  color: "blue"   <- desired: "red"',
      '  level:',
      '    brightness: 80',
      'delta  1 key desired but not yet reported',
      '  color: "red"',
    ]);

    // --json is the API's document as the SDK reads it (the response timestamp aside).
    const json = JSON.parse((await cli('shadow', 'get', 'lamp', '--json')).stdout);
    const sdk = await sdkGet('lamp');
    expect({ ...json, timestamp: 0 }).toEqual({ ...sdk, timestamp: 0 });
    expect(json.state.delta).toEqual({ color: 'red' });
  },
  SLOW,
);

test(
  'update --reported with null removes, --version checks, --file; 409 names the current version',
  async () => {
    const r = await cli(
      'shadow',
      'update',
      'lamp',
      '--reported',
      '{"color":"red","level":null}',
      '--version',
      '2',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/now version 3/);
    // Removing reported.level leaves desired.level.brightness unmatched: it is in the delta again.
    expect(r.stdout).toMatch(
      /^reported \(written\)\n {2}color: "red"\n {2}level: null\ndelta: level\.brightness$/m,
    );
    expect((await sdkGet('lamp')).state.reported).toEqual({ color: 'red' });

    const stale = await cli('shadow', 'update', 'lamp', '--desired', '{"color":"green"}', '--version', '1');
    expect(stale.code).toBe(2);
    expect(stale.stderr).toBe(
      'thingstead: ConflictException: Version conflict\n' +
        'The shadow is at version 3; re-run with --version 3 or without --version.\n',
    );
    expect((await sdkGet('lamp')).version).toBe(3); // nothing written

    const file = join(tmp, 'doc.json');
    writeFileSync(file, JSON.stringify({ state: { desired: { color: 'green' } }, clientToken: 'cli-1' }));
    const viaFile = JSON.parse((await cli('shadow', 'update', 'lamp', '--file', file, '--json')).stdout);
    expect(viaFile).toMatchObject({
      state: { desired: { color: 'green' } },
      version: 4,
      clientToken: 'cli-1',
    });
    await waitFor(() => deltas.find((d) => d.body.version === 4 && d.body.clientToken === 'cli-1'));
    const caughtUp = await cli(
      'shadow',
      'update',
      'lamp',
      '--reported',
      '{"color":"green","level":{"brightness":80}}',
    );
    expect(caughtUp.stdout).toMatch(/^delta: none \(reported matches desired\)$/m);
    expect((await cli('shadow', 'get', 'lamp')).stdout).toMatch(
      /^delta\n {2}\(none: reported matches desired\)\n$/m,
    );

    const bad = await cli('shadow', 'update', 'lamp', '--desired', '{nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^thingstead: --desired is not valid JSON/);
    const none = await cli('shadow', 'update', 'lamp');
    expect(none.stderr).toMatch(/give --desired/);
  },
  SLOW,
);

test(
  'named shadows: list says whether the classic one exists; delete keeps the version; 404 says what to do',
  async () => {
    expect((await cli('shadow', 'update', 'pump', '--name', 'config', '--desired', '{"rpm":900}')).code).toBe(
      0,
    );
    expect(
      (await cli('shadow', 'update', 'pump', '--name', 'firmware', '--reported', '{"v":"1.2"}')).code,
    ).toBe(0);
    expect((await cli('shadow', 'list', 'pump')).stdout).toBe(
      "classic shadow: none (create it with `thingstead shadow update pump --desired '{...}'`)\n" +
        'named shadows: 2\n  config\n  firmware\n',
    );
    await cli('shadow', 'update', 'pump', '--reported', '{"on":true}');
    expect(JSON.parse((await cli('shadow', 'list', 'pump', '--json')).stdout)).toEqual({
      thingName: 'pump',
      classicShadow: true,
      results: ['config', 'firmware'],
    });
    expect((await cli('shadow', 'get', 'pump', '--name', 'config')).stdout).toMatch(
      /^pump, named shadow config\n {2}version {6}1\n/,
    );
    expect(await sdkGet('pump', 'config')).toMatchObject({
      state: { desired: { rpm: 900 }, delta: { rpm: 900 } },
    });

    const del = await cli('shadow', 'delete', 'pump', '--name', 'config');
    expect(del.stdout).toBe(
      'deleted pump, named shadow config at version 1; an update within 48 h continues at version 2\n',
    );
    const gone = await cli('shadow', 'get', 'pump', '--name', 'config');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe(
      'thingstead: ResourceNotFoundException: No shadow exists with name: config\n' +
        'Create it with `thingstead shadow update pump --name config --desired \'{"key":"value"}\'`; ' +
        '`thingstead shadow list pump` shows which shadows exist.\n',
    );
    expect((await cli('shadow', 'list', 'pump')).stdout).toMatch(/named shadows: 1\n {2}firmware\n$/);
    const again = await cli('shadow', 'update', 'pump', '--name', 'config', '--desired', '{"rpm":1}');
    expect(again.stdout).toMatch(/now version 2/);
  },
  SLOW,
);

test(
  'history lists every accepted version, deletes included; says how to turn it on when empty',
  async () => {
    await cli('shadow', 'update', 'valve', '--desired', '{"open":true}');
    await cli('shadow', 'update', 'valve', '--reported', '{"open":true}');
    await cli('shadow', 'delete', 'valve');
    const out = await waitFor(
      async () => {
        const r = await cli('shadow', 'history', 'valve', '--since', '10m');
        return r.stdout.includes('deleted') ? r.stdout : null;
      },
      10_000,
      'history with the delete',
    );
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('valve, classic shadow: 3 versions');
    expect(lines[1]).toMatch(/^\S+Z {2}v1 {2}\{"desired":\{"open":true\}\}$/);
    expect(lines[2]).toMatch(/^\S+Z {2}v2 {2}\{"desired":\{"open":true\},"reported":\{"open":true\}\}$/);
    expect(lines[3]).toMatch(/^\S+Z {2}v2 {2}deleted$/);
    const json = JSON.parse((await cli('shadow', 'history', 'valve', '--json', '--limit', '2')).stdout);
    expect(json.map((v: any) => [v.version, v.deleted ?? false])).toEqual([
      [2, false],
      [2, true],
    ]);

    const empty = await cli('shadow', 'history', 'never-written');
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/^no history for never-written, classic shadow since 1h\.\n/);
    expect(empty.stdout).toMatch(/THINGSTEAD_SHADOW_HISTORY=true/);
  },
  SLOW,
);

test(
  '--help shows examples; a read-only key is told to use an admin key',
  async () => {
    const help = await cli('shadow', '--help');
    expect(help.stdout).toMatch(/Examples:\n {2}\$ thingstead shadow get lamp/);
    expect(help.stdout).toMatch(/history \[options\] <thing>/);
    const key = await p.credentials.create('ro', 'read-only');
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    };
    const args = [CLI, 'shadow', 'update', 'lamp', '--desired', '{"x":1}', '--data-dir', p.endpoints.dataDir];
    const denied = await run(process.execPath, args, { env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((denied as { code: number }).code).toBe(2);
    expect((denied as { stderr: string }).stderr).toMatch(
      /^thingstead: AccessDeniedException: .*\nThis key is read-only: use an admin key/,
    );
    const readable = await run(
      process.execPath,
      [CLI, 'shadow', 'get', 'lamp', '--data-dir', p.endpoints.dataDir],
      { env },
    );
    expect(readable.stdout).toMatch(/^lamp, classic shadow/);
  },
  SLOW,
);
