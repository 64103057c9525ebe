import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signedFetch } from '../../src/api/index.js';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Two platform nodes sharing one PostgreSQL database: a quota set through one node applies on the other
 * at once (the `quota` change event over LISTEN/NOTIFY), and both nodes add to one ledger (additive upserts),
 * so a thing that moved between nodes in one hour has one row per unit.
 */

const havePg = await postgresAvailable('metering cluster test');

describe.skipIf(!havePg)('metering on two nodes (PostgreSQL)', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let dataDir: string;
  let a: TestPlatform;
  let b: TestPlatform;
  let api: (
    p: TestPlatform,
    method: string,
    path: string,
    req?: Parameters<typeof signedFetch>[3],
  ) => Promise<any>;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    schema = await freshSchema('metering');
    dataDir = mkdtempSync(join(tmpdir(), 'metering-cluster-'));
    const config = { databaseUrl: schema.url, metering: { burstSeconds: 1 } };
    a = await startTestPlatform(config, { dataDir });
    b = await startTestPlatform(config, { dataDir });
    const credentials = await a.credentials.create('metering-cluster', 'admin');
    api = (p, method, path, req = {}) =>
      signedFetch({ endpoint: p.endpoints.http, region: p.config.region, ...credentials }, method, path, req);
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await a?.stop();
    await b?.stop();
    await schema?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const device = async (p: TestPlatform, clientId: string) => {
    const c = await mqtt.connectAsync(p.endpoints.mqtt!, {
      clientId,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    clients.push(c);
    return c;
  };

  test('a quota set on node A throttles a device connected to node B, with the reason string', async () => {
    await api(a, 'PUT', '/quotas', { body: { thingName: 'pg-noisy', limits: { publishRate: 3 } } });
    await waitFor(
      () => b.metering.quotas().things['pg-noisy']?.publishRate === 3,
      5000,
      'node B to apply it',
    );
    const c = await device(b, 'pg-noisy');
    const reasons: string[] = [];
    c.on(
      'packetreceive',
      (pk: any) => pk.cmd === 'puback' && pk.reasonCode === 0x97 && reasons.push(pk.properties?.reasonString),
    );
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => c.publishAsync('pg/x', 'm', { qos: 1 })),
    );
    expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThanOrEqual(5);
    expect(reasons[0]).toContain('quota exceeded: publishRate 3/s of thing pg-noisy');
  });

  test('both nodes add to one ledger: a thing that moved between nodes has one row per unit', async () => {
    const first = await device(a, 'pg-mover');
    for (let i = 0; i < 2; i++) await first.publishAsync('pg/m', 'x', { qos: 1 });
    await first.endAsync();
    const second = await device(b, 'pg-mover');
    for (let i = 0; i < 3; i++) await second.publishAsync('pg/m', 'x', { qos: 1 });
    await second.endAsync();
    await api(a, 'POST', '/usage/flush');
    await api(b, 'POST', '/usage/flush');
    const r = await api(a, 'GET', '/usage', { query: { thing: 'pg-mover', groupBy: 'hour,thing,unit' } });
    const messagesIn = r.rows.filter((x: any) => x.unit === 'messages_in');
    // Two CONNECTs and five PUBLISHes, in one row (unless the test straddled an hour boundary).
    expect(messagesIn.reduce((s: number, x: any) => s + x.amount, 0)).toBe(7);
    expect(messagesIn.length).toBeLessThanOrEqual(2);
    expect(
      r.rows
        .filter((x: any) => x.unit === 'connection_minutes')
        .reduce((s: number, x: any) => s + x.amount, 0),
    ).toBe(2);
  });
});
