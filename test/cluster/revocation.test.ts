import { IoTClient, UpdateCertificateCommand } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/platform.js';
import { connectTls, createDevice } from '../integration/security-helpers.js';

/**
 * A certificate revoked through node A's API cuts the device's connection on node C in under a second
 * (certificate status travels as a change event over PostgreSQL LISTEN/NOTIFY to every node).
 */

const ready =
  (await postgresAvailable('cluster revocation test')) && (await natsAvailable('cluster revocation test'));

describe.skipIf(!ready)('revocation across a three-node cluster', () => {
  let cluster: TestCluster;
  let iot: IoTClient;
  beforeAll(async () => {
    cluster = await startTestCluster(3, { mqtt: { allowAnonymous: false } });
    const a = cluster.nodes[0]!;
    const key = await a.credentials.create('cluster-revoke', 'admin');
    iot = new IoTClient({
      endpoint: a.endpoints.http,
      region: a.config.region,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('revoked on A, the device on C is disconnected in under a second', async () => {
    const c = cluster.nodes[2]!;
    const ARN = `arn:aws:iot:${c.config.region}:${c.config.accountId}`;
    const dev = await createDevice(iot, 'revoked-roamer', {
      name: 'revoked-roamer-p',
      statements: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/*` }],
    });
    const client = await waitFor(
      () => connectTls(c, dev, 'revoked-roamer').catch(() => undefined),
      5000,
      'connect on C',
    );
    let closedAt = 0;
    client.on('close', () => (closedAt ||= performance.now()));
    const t0 = performance.now();
    await iot.send(new UpdateCertificateCommand({ certificateId: dev.certificateId, newStatus: 'REVOKED' }));
    await waitFor(() => closedAt > 0, 5000, 'node C to drop the revoked certificate');
    const ms = closedAt - t0;
    console.log(`revocation on A to disconnect on C: ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(1000);
    client.end(true);
    // And it cannot come back on any node.
    for (const node of cluster.nodes)
      await expect(connectTls(node, dev, 'revoked-roamer')).rejects.toBeDefined();
  });
});
