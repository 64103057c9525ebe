import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreatePolicyVersionCommand, UpdateCertificateCommand } from '@aws-sdk/client-iot';
import { IoTClient } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { connectTls, createDevice, publishReason } from './security-helpers.js';

/**
 * Two nodes sharing PostgreSQL and the CA files (DESIGN.md "Growing past one machine"): a certificate revoked
 * or a policy changed through node A takes effect on a device connected to node B through change events
 * (PostgreSQL LISTEN/NOTIFY; latency figures in change-events.test.ts).
 */

const pg = await postgresAvailable('two-node security test');

describe.skipIf(!pg)('security on two nodes', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let dataDir: string;
  let a: TestPlatform;
  let b: TestPlatform;
  let iot: IoTClient;
  beforeAll(async () => {
    schema = await freshSchema('sec');
    dataDir = mkdtempSync(join(tmpdir(), 'sec-cluster-'));
    const config = { databaseUrl: schema.url, mqtt: { allowAnonymous: false } };
    a = await startTestPlatform(config, { dataDir });
    b = await startTestPlatform(config, { dataDir });
    const key = await a.credentials.create('cluster', 'admin');
    iot = new IoTClient({
      endpoint: a.endpoints.http,
      region: a.config.region,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await schema?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('policy changes and revocation made on node A reach a device connected to node B', async () => {
    const A = `arn:aws:iot:${a.config.region}:${a.config.accountId}`;
    const statements = [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${A}:client/*` },
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/x/*` },
    ];
    const dev = await createDevice(iot, 'roamer', { name: 'roamer-p', statements });
    // node B learns about the new policy from its change event
    const c = await waitFor(
      () => connectTls(b, dev, 'roamer').catch(() => undefined),
      5000,
      'connect to node B',
    );
    await waitFor(async () => (await publishReason(c, 'x/1')) === 0, 5000, 'publish allowed on B');
    await iot.send(
      new CreatePolicyVersionCommand({
        policyName: 'roamer-p',
        setAsDefault: true,
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [...statements, { Effect: 'Deny', Action: 'iot:Publish', Resource: `${A}:topic/x/1` }],
        }),
      }),
    );
    await waitFor(async () => (await publishReason(c, 'x/1')) === 0x87, 5000, 'the deny to reach node B');
    let closed = false;
    c.on('close', () => (closed = true));
    const t0 = Date.now();
    await iot.send(new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }));
    await waitFor(() => closed, 5000, 'node B to drop the revoked certificate');
    expect(Date.now() - t0).toBeLessThan(5000);
    await c.endAsync(true);
  });
});
