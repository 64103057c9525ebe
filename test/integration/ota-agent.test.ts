import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  AddThingToThingGroupCommand,
  CreateJobCommand,
  CreateThingGroupCommand,
  DescribeJobCommand,
  DescribeJobExecutionCommand,
} from '@aws-sdk/client-iot';
import {
  generateSigningKey,
  keyIdOf,
  OTA_OPERATION,
  signFile,
  startAgent,
  type Agent,
} from '../../src/agent/index.js';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';
import { createDevice, type Device } from './security-helpers.js';

/**
 * The reference device agent end to end (issue 11, OTA): `thingstead ota keygen` and `ota deploy` (CLI,
 * over the API) roll an image out to a thing group; the agent (mutual TLS, a thing-scoped policy) takes
 * the job from notify-next, downloads over the device HTTPS port (signed URL, ranges) or MQTT file
 * delivery, verifies size, SHA-256 and the ECDSA P-256 signature, refuses downgrades, runs the install
 * hook and reports SUCCEEDED; a tampered image, a wrong signature, an expired URL, a downgrade and a failed
 * install (rolled back) each end FAILED with their named reason in the execution's statusDetails.
 */
const run = promisify(execFile);
let h: JobsHarness;
let device: Device;
let agent: Agent;
let dir: string;
let keys: { keyId: string; privateKey: string; publicKey: string };
const THING = 'ota-dev';

async function cli(...args: string[]) {
  const r = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', ...args, '--data-dir', h.platform.endpoints.dataDir],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      timeout: 60_000,
    },
  );
  return r.stdout;
}

async function finished(jobId: string) {
  return waitFor(
    async () => {
      const { execution } = await h.iot.send(new DescribeJobExecutionCommand({ jobId, thingName: THING }));
      return execution && ['SUCCEEDED', 'FAILED', 'REJECTED'].includes(execution.status!) ? execution : null;
    },
    30_000,
    `job ${jobId} to finish`,
  );
}

function image(name: string, size: number): string {
  const file = join(dir, name);
  writeFileSync(file, randomBytes(size));
  return file;
}

beforeAll(async () => {
  h = await jobsPlatform({ mqtt: { allowAnonymous: false }, deviceHttps: { port: 0 } });
  dir = mkdtempSync(join(tmpdir(), 'ota-agent-'));
  const account = `arn:aws:iot:${h.platform.config.region}:${h.platform.config.accountId}`;
  device = await createDevice(h.iot, THING, {
    name: 'ota-dev-policy',
    statements: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${account}:client/${THING}` },
      {
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: `${account}:topic/$aws/things/${THING}/*`,
      },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${account}:topicfilter/$aws/things/${THING}/*` },
    ],
  });
  await h.iot.send(new CreateThingGroupCommand({ thingGroupName: 'ota-fleet' }));
  await h.iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'ota-fleet', thingName: THING }));
  keys = JSON.parse(await cli('ota', 'keygen', '--json'));
  expect(keys.keyId).toBe(keyIdOf(readFileSync(keys.publicKey, 'utf8')));
  agent = await startAgent({
    mqttUrl: h.platform.endpoints.mqtts!,
    thingName: THING,
    ca: h.platform.tls.caPem,
    cert: device.certPem,
    key: device.keyPem,
    trustedKeys: [readFileSync(keys.publicKey, 'utf8')],
    workDir: join(dir, 'agent'),
    installCommand: `test "$THINGSTEAD_OTA_VERSION" != 9.9.9 && cp "$THINGSTEAD_OTA_FILE" "${dir}/installed-$THINGSTEAD_OTA_VERSION"`,
    rollbackCommand: `echo "$THINGSTEAD_OTA_PREVIOUS_VERSION" > "${dir}/rolled-back"`,
    initialVersion: '1.0.0',
    blockSize: 16_384,
  });
}, 120_000);
afterAll(async () => {
  await agent?.close();
  await h?.platform.stop();
});

test('thingstead ota deploy --via https: the agent downloads over device HTTPS, verifies, installs: SUCCEEDED', async () => {
  const file = image('fw-1.1.0.bin', 1_500_000);
  const out = await cli(
    'ota',
    'deploy',
    file,
    '--to',
    'ota-fleet',
    '--version',
    '1.1.0',
    '--rate',
    '10',
    '--abort-after',
    '50%',
    '--job-id',
    'ota-https',
  );
  expect(out).toMatch(/signed .*sha256 [0-9a-f]{64}/);
  expect(out).toContain('uploaded');
  expect(out).toContain('job        ota-https');
  const { job } = await h.iot.send(new DescribeJobCommand({ jobId: 'ota-https' }));
  expect(job?.jobExecutionsRolloutConfig?.maximumPerMinute).toBe(10);
  expect(job?.abortConfig?.criteriaList?.[0]?.thresholdPercentage).toBe(50);
  const e = await finished('ota-https');
  expect(e.status).toBe('SUCCEEDED');
  expect(e.statusDetails?.detailsMap).toMatchObject({ version: '1.1.0', previousVersion: '1.0.0' });
  expect(readFileSync(join(dir, 'installed-1.1.0')).equals(readFileSync(file))).toBe(true);
  expect(agent.version()).toBe('1.1.0');
}, 60_000);

test('thingstead ota deploy --via mqtt: the agent fetches the blocks over MQTT file delivery: SUCCEEDED', async () => {
  const file = image('fw-1.2.0.bin', 700_001);
  await cli(
    'ota',
    'deploy',
    file,
    '--to',
    'ota-fleet',
    '--version',
    '1.2.0',
    '--via',
    'mqtt',
    '--job-id',
    'ota-mqtt',
  );
  const document = JSON.parse((await h.platform.jobs.store.getJob('ota-mqtt'))!.document);
  expect(document.ota.url).toBeUndefined();
  expect(document.ota.stream).toEqual({ streamId: 'ota-mqtt', fileId: 0 });
  const e = await finished('ota-mqtt');
  expect(e.status).toBe('SUCCEEDED');
  expect(readFileSync(join(dir, 'installed-1.2.0')).equals(readFileSync(file))).toBe(true);
}, 60_000);

/** Upload `stored`, create a job whose document describes `signed` (signed with `signKey`) and wait for the outcome. */
async function refusedJob(
  jobId: string,
  options: {
    version: string;
    stored: string;
    signed?: string;
    signKey?: string;
    url?: string;
    keyId?: string;
  },
) {
  const stored = await h.platform.ota.service.upload(createReadStream(options.stored), {});
  const s = await signFile(
    options.signed ?? options.stored,
    options.signKey ?? readFileSync(keys.privateKey, 'utf8'),
  );
  const ota = {
    version: options.version,
    size: s.size,
    sha256: s.sha256,
    signature: s.signature,
    signatureAlgorithm: 'ECDSA-P256-SHA256',
    signingKeyId: options.keyId ?? keys.keyId,
    url: options.url ?? `\${aws:iot:s3-presigned-url:https://s3.amazonaws.com/thingstead/${stored.sha256}}`,
  };
  await h.iot.send(
    new CreateJobCommand({
      jobId,
      targets: [h.arn('thing', THING)],
      document: JSON.stringify({ operation: OTA_OPERATION, ota }),
    }),
  );
  const e = await finished(jobId);
  expect(e.status).toBe('FAILED');
  return e.statusDetails!.detailsMap!;
}

test('a tampered image (bytes differ from the signed digest) is refused: SHA256_MISMATCH', async () => {
  const good = image('fw-2.0.0.bin', 200_000);
  const bad = join(dir, 'fw-2.0.0-tampered.bin');
  const bytes = readFileSync(good);
  bytes[1234] = bytes[1234]! ^ 0xff;
  writeFileSync(bad, bytes);
  const d = await refusedJob('ota-tampered', { version: '2.0.0', stored: bad, signed: good });
  expect(d.failure).toBe('SHA256_MISMATCH');
  expect(d.reason).toContain('sha256 mismatch');
  expect(existsSync(join(dir, 'installed-2.0.0'))).toBe(false);
}, 60_000);

test('a wrong signature (another key, claiming the trusted key id) is refused: SIGNATURE_INVALID', async () => {
  const file = image('fw-2.0.1.bin', 100_000);
  const other = generateSigningKey();
  const d = await refusedJob('ota-badsig', { version: '2.0.1', stored: file, signKey: other.privateKeyPem });
  expect(d.failure).toBe('SIGNATURE_INVALID');
  expect(d.reason).toContain(`with key ${keys.keyId}`);
  const d2 = await refusedJob('ota-unknown-key', {
    version: '2.0.1',
    stored: file,
    signKey: other.privateKeyPem,
    keyId: other.keyId,
  });
  expect(d2.failure).toBe('UNKNOWN_SIGNING_KEY');
}, 60_000);

test('an expired download URL is refused: URL_EXPIRED, the platform saying when it expired', async () => {
  const file = image('fw-2.0.2.bin', 50_000);
  const stored = await h.platform.ota.service.upload(createReadStream(file), {});
  const path = `/ota/download/${stored.sha256}`;
  const url = `${h.platform.endpoints.deviceHttps}${path}?${h.platform.ota.signer.sign(path, Math.floor(Date.now() / 1000) - 1)}`;
  const d = await refusedJob('ota-expired', { version: '2.0.2', stored: file, url });
  expect(d.failure).toBe('URL_EXPIRED');
  expect(d.reason).toContain('the signed URL expired at');
}, 60_000);

test('a downgrade (version not newer than the installed one) is refused before any download: DOWNGRADE', async () => {
  const file = image('fw-1.1.5.bin', 10_000);
  const d = await refusedJob('ota-downgrade', { version: '1.1.5', stored: file });
  expect(d.failure).toBe('DOWNGRADE');
  expect(d.reason).toBe('version 1.1.5 is not newer than the installed 1.2.0 (anti-rollback)');
  expect(agent.version()).toBe('1.2.0');
}, 60_000);

test('a failing install hook ends FAILED (INSTALL_FAILED) after the rollback hook ran', async () => {
  const file = image('fw-9.9.9.bin', 10_000);
  const d = await refusedJob('ota-install-fails', { version: '9.9.9', stored: file });
  expect(d.failure).toBe('INSTALL_FAILED');
  expect(d.reason).toContain('install hook exited with code 1');
  expect(d.rolledBack).toBe('true');
  expect(readFileSync(join(dir, 'rolled-back'), 'utf8').trim()).toBe('1.2.0');
  expect(agent.version()).toBe('1.2.0');
}, 60_000);
