import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMapping, startGateway, type Gateway } from '../../src/gateway/index.js';
import { scrapeMetric, waitFor, type TestPlatform } from '../helpers/platform.js';
import {
  admin,
  freePort,
  gatewayIdentity,
  gatewayPlatform,
  telemetryRule,
  tempDir,
  type GatewayIdentity,
} from './helpers.js';

// Refusals against the real platform's quotas (src/metering): a backlog replayed into a low publish quota is
// refused with PUBACK 0x97 Quota exceeded again and again. Quota refusals are transient: every record stays
// on disk and goes again after a backoff (counted `retried`), so all of them reach the store. A refusal that
// is not transient (0x87 Not authorized: a topic the gateway's policy does not allow) drops that record,
// counted with its reason code, and the queue goes on.

const THING = 'gw-quota';
const RATE = 50;
const RECORDS = 300;
const FORBIDDEN_AT = 100;

let platform: TestPlatform;
let api: Awaited<ReturnType<typeof admin>>['api'];
let id: GatewayIdentity;
let gw: Gateway | undefined;

beforeAll(async () => {
  // One second of burst (the default 10 would take this whole backlog at once).
  platform = await gatewayPlatform({ metering: { burstSeconds: 1 } });
  const a = await admin(platform);
  api = a.api;
  id = await gatewayIdentity(a.iot, platform, THING);
  await telemetryRule(api, 'gw_quota_ts', ['counter']);
  await api('PUT', '/quotas', { body: { thingName: THING, limits: { publishRate: RATE } } });
}, 60_000);

afterAll(async () => {
  await gw?.close().catch(() => undefined);
  await platform?.stop();
}, 60_000);

describe('gateway: PUBACK refusals', () => {
  it('0x97 quota exceeded is retried with backoff until every record is stored; 0x87 is final and counted', async () => {
    const mapping = parseMapping(
      JSON.stringify({
        devices: [
          {
            name: 'plc-quota',
            protocol: 'modbus',
            host: '127.0.0.1',
            port: await freePort(),
            pollIntervalMs: 60_000,
            tags: [{ name: 'counter', table: 'input', address: 0, type: 'uint16' }],
          },
        ],
      }),
    );
    gw = await startGateway({
      thingName: id.thingName,
      mqttUrl: platform.endpoints.mqtts!,
      ca: platform.tls.caPem,
      cert: id.certPem,
      key: id.keyPem,
      mapping,
      dataDir: tempDir('gw-quota-'),
      upstreamMaxBackoffMs: 2000,
    });
    gw.drivers[0]!.setEnabled(false);
    await gw.upstream.connected();
    const t0 = Date.now() - 60_000;
    gw.queue.appendMany(
      Array.from({ length: RECORDS }, (_, i) => ({
        // One record on a topic the gateway's policy does not allow: refused 0x87, not retried.
        topic:
          i + 1 === FORBIDDEN_AT ? `things/someone-else/field/plc-quota` : `things/${THING}/field/plc-quota`,
        payload: Buffer.from(JSON.stringify({ device: 'plc-quota', counter: i })),
        ts: t0 + i * 10,
      })),
    );
    gw.upstream.pump();
    await waitFor(
      () => gw!.stats().queue.pending === 0,
      90_000,
      'the backlog to drain under the quota',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(gw!.stats().upstream)}`);
    });
    const up = gw.stats().upstream;
    expect(up.refused).toEqual({ '0x87': 1 });
    expect(up.retried['0x97']).toBeGreaterThan(0);
    expect(up.acked).toBeGreaterThanOrEqual(RECORDS - 1);
    expect(gw.stats().queue.ackedThrough).toBe(RECORDS);
    expect(gw.health()).toMatchObject({
      upstream: { refused: { '0x87': 1 }, retried: { '0x97': up.retried['0x97'] } },
    });
    // The platform did refuse: its throttle counter says so.
    expect(await scrapeMetric(platform, 'thingstead_quota_throttled_total')).toBeGreaterThan(0);

    let have = new Set<number>();
    await waitFor(
      async () => {
        const r = await api('GET', '/timeseries/query', {
          query: { metric: 'seq', thing: 'plc-quota', from: '-1h', to: 'now', limit: 100_000 },
        });
        have = new Set((r.points as Array<{ value: number }>).map((p) => p.value));
        return have.size >= RECORDS - 1;
      },
      30_000,
      'every allowed record in the store',
    ).catch(() => undefined);
    const missing = Array.from({ length: RECORDS }, (_, i) => i + 1).filter(
      (n) => n !== FORBIDDEN_AT && !have.has(n),
    );
    expect(missing).toEqual([]);
    expect(have.has(FORBIDDEN_AT)).toBe(false);
  }, 150_000);
});
