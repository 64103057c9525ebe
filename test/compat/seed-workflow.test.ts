import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The seed's security workflow (shared/seed/iot-blueprint.md, "IoT Device Management" and "IoT Security")
 * run against Thingstead with boto3 (/usr/bin/python3, Debian python3-boto3) and the AWS CLI
 * (/usr/bin/aws), with its bugs fixed the way a user would:
 * - the policy document is passed as a JSON string (json.dumps), not a dict;
 * - the policy is attached to the real certificate ARN (AWS refuses thing ARNs as policy targets), and the
 *   certificate is attached to the thing;
 * - the CSR is a real one (made on the "device", here with @peculiar/x509) and the private key stays there;
 * - the policy also allows iot:Connect for the device's client id (without it AWS refuses the connection).
 * Then mosquitto_pub, with that certificate over mutual TLS, publishes to `iot_data` and is refused on any
 * other topic.
 */

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const AWS = '/usr/bin/aws';
const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';

async function available(cmd: string, args: string[]): Promise<boolean> {
  if (!existsSync(cmd)) return false;
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}
const haveBoto3 = await available(PYTHON, ['-c', 'import boto3']);
const haveAws = existsSync(AWS);
const haveMosquitto = existsSync(MOSQUITTO_PUB);
for (const [ok, what] of [
  [haveBoto3, 'boto3 (Debian python3-boto3)'],
  [haveAws, 'AWS CLI (Debian awscli)'],
  [haveMosquitto, 'mosquitto_pub (Debian mosquitto-clients)'],
] as const) {
  if (ok) continue;
  if (process.env.CI === 'true') throw new Error(`${what} is required under CI`);
  console.warn(`SKIPPING seed workflow parts: ${what} is not installed`);
}

let platform: TestPlatform;
let dir: string;
const routed: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform({ mqtt: { allowAnonymous: false } });
  dir = mkdtempSync(join(tmpdir(), 'seed-'));
  platform.broker.subscribeInternal('#', (m) => routed.push(m.topic));
});
afterAll(async () => {
  await platform?.stop();
});

const env = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: dir,
  AWS_SHARED_CREDENTIALS_FILE: platform.endpoints.credentialsFile!,
  AWS_CONFIG_FILE: join(dir, 'no-config'),
  AWS_DEFAULT_REGION: platform.config.region,
  AWS_PAGER: '',
});

async function mosquittoPub(
  prefix: string,
  clientId: string,
  topic: string,
): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(
      MOSQUITTO_PUB,
      [
        ...['-h', '127.0.0.1', '-p', String(platform.endpoints.mqttsPort)],
        ...[
          '--cafile',
          platform.endpoints.caFile,
          '--cert',
          `${prefix}.cert.pem`,
          '--key',
          `${prefix}.key.pem`,
        ],
        ...['-i', clientId, '-t', topic, '-m', 'temperature=25', '-q', '1'],
      ],
      { timeout: 10_000 },
    );
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

async function expectPublishesOnlyToIotData(prefix: string, clientId: string): Promise<void> {
  const before = routed.length;
  const ok = await mosquittoPub(prefix, clientId, 'iot_data');
  expect(ok.code, ok.stderr).toBe(0);
  await waitFor(() => routed.slice(before).includes('iot_data'), 5000, 'iot_data to be routed');
  const denied = await mosquittoPub(prefix, clientId, 'other_topic');
  expect(denied.code, 'publishing to other_topic must fail').not.toBe(0);
  // MQTT 3.1.1 has no negative PUBACK: the broker closes the connection, as AWS does.
  expect(routed).not.toContain('other_topic');
}

const SEED_BOTO3 = String.raw`
import boto3, json, sys
endpoint, csr_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
iot = boto3.client('iot', endpoint_url=endpoint)

# Create a new device
response = iot.create_thing(
    thingName='MyDevice',
    attributePayload={'attributes': {'deviceType': 'sensor'}}
)

# Get the device's certificate (from a real CSR; the private key never leaves the device)
cert = iot.create_certificate_from_csr(
    certificateSigningRequest=open(csr_file).read(),
    setAsActive=True
)
certificateArn = cert['certificateArn']
iot.attach_thing_principal(thingName='MyDevice', principal=certificateArn)
open(out + '.cert.pem', 'w').write(cert['certificatePem'])

# Create a new security policy (the document is a JSON string)
arn = certificateArn.split(':cert/')[0]
policy = iot.create_policy(
    policyName='MyPolicy',
    policyDocument=json.dumps({
        'Version': '2012-10-17',
        'Statement': [
            {'Effect': 'Allow', 'Action': 'iot:Connect', 'Resource': arn + ':client/MyDevice'},
            {'Effect': 'Allow', 'Action': 'iot:Publish', 'Resource': arn + ':topic/iot_data'},
        ]
    })
)

# Attach the security policy to the device's certificate
iot.attach_policy(policyName='MyPolicy', target=certificateArn)

desc = iot.describe_certificate(certificateId=cert['certificateId'])['certificateDescription']
eff = iot.get_effective_policies(principal=certificateArn, thingName='MyDevice')['effectivePolicies']
print(json.dumps({'status': desc['status'], 'policies': [p['policyName'] for p in eff],
                  'thingArn': response['thingArn'], 'policyArn': policy['policyArn']}))
`;

describe.skipIf(!haveBoto3 || !haveMosquitto)('seed workflow with boto3', () => {
  it('creates the thing, certificate from a CSR and policy; mosquitto_pub publishes to iot_data only', async () => {
    const prefix = join(dir, 'boto3');
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=MyDevice',
      keys,
      signingAlgorithm: alg,
    });
    const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
    writeFileSync(`${prefix}.key.pem`, `-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----\n`, {
      mode: 0o600,
    });
    writeFileSync(`${prefix}.csr`, csr.toString('pem'));
    writeFileSync(join(dir, 'seed.py'), SEED_BOTO3);
    const r = await run(PYTHON, [join(dir, 'seed.py'), platform.endpoints.http, `${prefix}.csr`, prefix], {
      env: env(),
    });
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ status: 'ACTIVE', policies: ['MyPolicy'] });
    expect(out.thingArn).toMatch(/:thing\/MyDevice$/);
    await expectPublishesOnlyToIotData(prefix, 'MyDevice');
  });

  it('attaching the policy to the thing ARN, as the seed does, is refused with a pointer to the fix', async () => {
    const script = String.raw`
import boto3, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1])
try:
    iot.attach_policy(policyName='MyPolicy', target='arn:aws:iot:us-east-1:000000000000:thing/MyDevice')
except iot.exceptions.InvalidRequestException as e:
    print(e.response['Error']['Message'])
`;
    writeFileSync(join(dir, 'seed-bug.py'), script);
    const r = await run(PYTHON, [join(dir, 'seed-bug.py'), platform.endpoints.http], { env: env() });
    expect(r.stdout).toMatch(/certificate ARN/);
  });
});

describe.skipIf(!haveAws || !haveMosquitto)('seed workflow with the AWS CLI', () => {
  const aws = async (args: string[]) => {
    const r = await run(AWS, [...args, '--endpoint-url', platform.endpoints.http, '--output', 'json'], {
      env: env(),
    });
    return r.stdout ? JSON.parse(r.stdout) : {};
  };

  it('create-thing, create-keys-and-certificate, create-policy, attach-policy; then mosquitto_pub', async () => {
    const prefix = join(dir, 'cli');
    await aws(['iot', 'create-thing', '--thing-name', 'MyCliDevice']);
    const cert = await aws([
      ...['iot', 'create-keys-and-certificate', '--set-as-active'],
      ...['--certificate-pem-outfile', `${prefix}.cert.pem`, '--private-key-outfile', `${prefix}.key.pem`],
    ]);
    expect(cert.certificateId).toMatch(/^[0-9a-f]{64}$/);
    await aws([
      'iot',
      'attach-thing-principal',
      '--thing-name',
      'MyCliDevice',
      '--principal',
      cert.certificateArn,
    ]);
    const arn = (cert.certificateArn as string).split(':cert/')[0];
    const doc = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/MyCliDevice` },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/iot_data` },
      ],
    };
    writeFileSync(join(dir, 'policy.json'), JSON.stringify(doc));
    const p = await aws([
      ...['iot', 'create-policy', '--policy-name', 'MyCliPolicy'],
      ...['--policy-document', `file://${join(dir, 'policy.json')}`],
    ]);
    expect(p.policyVersionId).toBe('1');
    await aws(['iot', 'attach-policy', '--policy-name', 'MyCliPolicy', '--target', cert.certificateArn]);
    const targets = await aws(['iot', 'list-targets-for-policy', '--policy-name', 'MyCliPolicy']);
    expect(targets.targets).toEqual([cert.certificateArn]);
    await expectPublishesOnlyToIotData(prefix, 'MyCliDevice');

    // A malformed document is refused with a message that points at the problem.
    writeFileSync(
      join(dir, 'bad.json'),
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish' }] }),
    );
    await expect(
      aws([
        'iot',
        'create-policy',
        '--policy-name',
        'Bad',
        '--policy-document',
        `file://${join(dir, 'bad.json')}`,
      ]),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/MalformedPolicyException.*Statement\[0\]/s) });
  }, 120_000); // six AWS CLI v2 runs of ~1-5 s each (Python start-up), more on a loaded machine
});
