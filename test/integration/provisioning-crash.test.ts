import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import {
  CreatePolicyCommand,
  DescribeThingRegistrationTaskCommand,
  GetRegistrationCodeCommand,
  IoTClient,
  RegisterCACertificateCommand,
  RegisterThingCommand,
  StartThingRegistrationTaskCommand,
} from '@aws-sdk/client-iot';
import { createCa, createKeysAndCertificate } from '../../src/identity/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Nothing half-made after a crash (issue 12): a platform process running a bulk task is killed (SIGKILL)
 * in the middle of a registration, after the thing was made and the certificate attached but before the
 * certificate became ACTIVE. The journal shows the open registration; a new start on the same data
 * undoes it (apply.ts recovery), resumes the task at the lines without a result, and ends with every thing
 * holding exactly its one ACTIVE certificate and no certificate without its thing. Then an in-process
 * failure in the middle of an apply (a policy document the policy context refuses, after the certificate
 * was registered) is undone at once.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-crash-'));
let platform: TestPlatform | null = null;
const LINES = 40;

afterAll(async () => {
  await platform?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const template = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' }, Cert: { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificatePem: { Ref: 'Cert' }, Status: 'ACTIVE' },
    },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'crash-device' } },
  },
});

test('a process killed mid-registration leaves nothing half-made once restarted', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/integration/fixtures/provisioning-crash-child.ts'],
    {
      env: { ...process.env, CRASH_DATA_DIR: dataDir, CRASH_AFTER: '20' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
  try {
    const line = await waitFor(
      () => out.split('\n').find((l) => l.startsWith('{')),
      60_000,
      `the child (${err})`,
    );
    const info = JSON.parse(line) as { http: string; accessKeyId: string; secretAccessKey: string };
    const iot = new IoTClient({
      endpoint: info.http,
      region: 'us-east-1',
      credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
      maxAttempts: 1,
    });
    // The factory CA and 40 device certificates from it.
    const factory = await createCa('Crash Factory CA');
    const code = (await iot.send(new GetRegistrationCodeCommand({}))).registrationCode!;
    const verification = await createKeysAndCertificate(factory, { commonName: code, keyType: 'ec-p256' });
    await iot.send(
      new RegisterCACertificateCommand({
        caCertificate: factory.certPem,
        verificationCertificate: verification.certificatePem,
        setAsActive: true,
      }),
    );
    await iot.send(
      new CreatePolicyCommand({
        policyName: 'crash-device',
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
        }),
      }),
    );
    const lines: string[] = [];
    for (let i = 0; i < LINES; i++) {
      const c = await createKeysAndCertificate(factory, { commonName: `crash-${i}`, keyType: 'ec-p256' });
      lines.push(
        JSON.stringify({ SerialNumber: `crash-${String(i).padStart(3, '0')}`, Cert: c.certificatePem }),
      );
    }
    mkdirSync(join(dataDir, 'bulk', 'crash'), { recursive: true });
    writeFileSync(join(dataDir, 'bulk', 'crash', 'lines.jsonl'), lines.join('\n'));
    const { taskId } = await iot.send(
      new StartThingRegistrationTaskCommand({
        templateBody: template,
        inputFileBucket: 'crash',
        inputFileKey: 'lines.jsonl',
        roleArn: 'arn:aws:iam::123456789012:role/bulk',
      }),
    );
    expect(await exited).toBe('SIGKILL');

    // What the dead process left: at least one registration cut in half, still in the journal.
    const db = new BetterSqlite3(join(dataDir, 'thingstead.db'));
    const open = db.prepare('SELECT attempt_id, undo FROM provisioning_journal').all() as { undo: string }[];
    const halfMade = db
      .prepare(
        "SELECT t.thing_name FROM reg_thing_principals t JOIN certificates c ON t.principal LIKE '%' || c.certificate_id " +
          "WHERE c.status = 'PENDING_ACTIVATION'",
      )
      .all();
    db.close();
    expect(open.length).toBeGreaterThanOrEqual(1);
    expect(halfMade.length).toBeGreaterThanOrEqual(1);

    // A new start on the same data: recovery, then the task resumes.
    platform = await startTestPlatform(
      { provisioning: { recoveryLeaseMs: 300, sweepIntervalMs: 100 } },
      { dataDir, keepData: true },
    );
    const key = await platform.credentials.create('after', 'admin');
    const iot2 = new IoTClient({
      endpoint: platform.endpoints.http,
      region: platform.config.region,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    const done = await waitFor(
      async () => {
        const d = await iot2.send(new DescribeThingRegistrationTaskCommand({ taskId }));
        return d.status === 'Completed' ? d : null;
      },
      60_000,
      'the resumed task to complete',
    );
    expect(done).toMatchObject({ successCount: LINES, failureCount: 0 });
    await waitFor(
      async () => (await platform!.provisioning.store.journalIds()).length === 0,
      10_000,
      'an empty journal',
    );

    const check = new BetterSqlite3(join(dataDir, 'thingstead.db'), { readonly: true });
    try {
      const certs = check
        .prepare('SELECT certificate_id, status FROM certificates WHERE ca_certificate_id = ?')
        .all(await caIdOf(factory.certPem)) as { certificate_id: string; status: string }[];
      // 40 device certificates (the verification certificate is never registered).
      expect(certs).toHaveLength(LINES);
      for (const c of certs) {
        expect(c.status).toBe('ACTIVE');
        const holders = check
          .prepare('SELECT thing_name FROM reg_thing_principals WHERE principal LIKE ?')
          .all(`%:cert/${c.certificate_id}`);
        expect(holders).toHaveLength(1);
      }
      for (let i = 0; i < LINES; i++) {
        const name = `crash-${String(i).padStart(3, '0')}`;
        const principals = check
          .prepare('SELECT principal FROM reg_thing_principals WHERE thing_name = ?')
          .all(name);
        expect(principals, name).toHaveLength(1);
      }
    } finally {
      check.close();
    }

    // An in-process failure after the first write is undone at once: the certificate does not stay.
    const extra = await createKeysAndCertificate(factory, { commonName: 'half', keyType: 'ec-p256' });
    const broken = JSON.stringify({
      Parameters: { Cert: { Type: 'String' } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'half-made' } },
        certificate: {
          Type: 'AWS::IoT::Certificate',
          Properties: { CertificatePem: { Ref: 'Cert' }, Status: 'ACTIVE' },
        },
        policy: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument:
              '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"iot:Connect","Resource":"*"}]}',
          },
        },
      },
    });
    await expect(
      iot2.send(
        new RegisterThingCommand({ templateBody: broken, parameters: { Cert: extra.certificatePem } }),
      ),
    ).rejects.toMatchObject({ name: expect.stringMatching(/ResourceRegistrationFailure|InvalidRequest/) });
    await expect(platform.security.certificates.describe(extra.certificateId)).rejects.toThrow();
    expect(await platform.registry.store.getThing('half-made')).toBeUndefined();
  } finally {
    child.kill('SIGKILL');
  }
}, 180_000);

async function caIdOf(pem: string): Promise<string> {
  const { certificateIdOf } = await import('../../src/identity/index.js');
  return certificateIdOf(pem);
}
