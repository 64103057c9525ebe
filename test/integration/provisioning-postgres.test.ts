import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  DescribeCertificateCommand,
  DescribeThingRegistrationTaskCommand,
  RegisterThingCommand,
  StartThingRegistrationTaskCommand,
} from '@aws-sdk/client-iot';
import { waitFor } from '../helpers/platform.js';
import { freshPgSchema, postgresUrl } from '../compat/harness.js';
import {
  claimDevice,
  devicePolicy,
  fleetTemplate,
  provisioningPlatform,
  type ProvisioningHarness,
} from './provisioning-helpers.js';

/**
 * The provisioning flows on PostgreSQL (the same store code as SQLite, `$n` SQL): claim, MQTT registration,
 * token reuse, the sweep (under its advisory lock) removing an expired token's certificate, RegisterThing,
 * and a bulk task.
 */
let h: ProvisioningHarness | null = null;
let schema: { url: string; drop(): Promise<void> } | null = null;

beforeAll(async () => {
  const url = await postgresUrl();
  if (!url) return;
  schema = await freshPgSchema(url);
  h = await provisioningPlatform({ databaseUrl: schema.url, provisioning: { tokenTtlMs: 3000 } });
  const { region, accountId } = h.platform.config;
  await h.policy('device-policy', devicePolicy(region, accountId));
  await h.template('fleet', fleetTemplate('device-policy'));
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
  await schema?.drop();
});

test('claim, register, reuse refused, expiry swept, RegisterThing and a bulk task on PostgreSQL', async (ctx) => {
  if (!h) return ctx.skip();
  const d = await claimDevice(h, 'fleet', 'pg-claim');
  try {
    const c1 = await d.certificate();
    expect(await d.register(c1.certificateOwnershipToken, { SerialNumber: 'P1' })).toMatchObject({
      accepted: true,
      body: { thingName: 'dev-P1' },
    });
    const again = await d.register(c1.certificateOwnershipToken, { SerialNumber: 'P1' });
    expect(again.body).toMatchObject({ errorCode: 'InvalidCertificateOwnershipToken' });
    const c2 = await d.certificate();
    await new Promise((r) => setTimeout(r, 3200));
    const report = await h.platform.provisioning.sweep();
    expect(report.certificatesRemoved).toBeGreaterThanOrEqual(1);
    await expect(
      h.iot.send(new DescribeCertificateCommand({ certificateId: c2.certificateId })),
    ).rejects.toThrow();
  } finally {
    await d.client.endAsync();
  }
  const template = JSON.stringify({
    Parameters: { SerialNumber: { Type: 'String' } },
    Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } } },
  });
  const r = await h.iot.send(
    new RegisterThingCommand({ templateBody: template, parameters: { SerialNumber: 'pg-api' } }),
  );
  expect(r.resourceArns?.thing).toBe(h.arn('thing', 'pg-api'));
  const dir = join(h.platform.endpoints.dataDir, 'bulk', 'pgbulk');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'lines.jsonl'),
    Array.from({ length: 200 }, (_, i) => JSON.stringify({ SerialNumber: `pg-${i}` })).join('\n'),
  );
  const { taskId } = await h.iot.send(
    new StartThingRegistrationTaskCommand({
      templateBody: template,
      inputFileBucket: 'pgbulk',
      inputFileKey: 'lines.jsonl',
      roleArn: 'arn:aws:iam::123456789012:role/bulk',
    }),
  );
  const done = await waitFor(
    async () => {
      const t = await h!.iot.send(new DescribeThingRegistrationTaskCommand({ taskId }));
      return t.status === 'Completed' ? t : null;
    },
    60_000,
    'the task',
  );
  expect(done).toMatchObject({ successCount: 200, failureCount: 0 });
}, 120_000);
