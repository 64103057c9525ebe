import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMapping, startGateway, type Gateway, type Mapping } from '../../src/gateway/index.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';
import {
  admin,
  freePort,
  gatewayIdentity,
  gatewayPlatform,
  startModbusDevice,
  telemetryRule,
  tempDir,
  type GatewayIdentity,
} from './helpers.js';

// The outage proof (issue 15): the platform is stopped for two minutes (GATEWAY_OUTAGE_MS, default 120000)
// while the gateway keeps polling a Modbus device; halfway through, the gateway itself is restarted on its
// data directory. The platform then starts again on the same data directory and ports: every reading
// arrives in the time-series store, in order, none duplicated, and the counters match.
const OUTAGE_MS = Number(process.env.GATEWAY_OUTAGE_MS ?? 120_000);
const POLL_MS = 250;

let platformDir: string;
let gatewayDir: string;
let tlsPort: number;
let httpPort: number;
let platform: TestPlatform | undefined;
let plc: Awaited<ReturnType<typeof startModbusDevice>>;
let id: GatewayIdentity;
let mapping: Mapping;
const gateways: Gateway[] = [];
let counter: NodeJS.Timeout;

const start = (p: TestPlatform) =>
  startGateway({
    thingName: id.thingName,
    mqttUrl: `mqtts://127.0.0.1:${tlsPort}`,
    ca: p.tls.caPem,
    cert: id.certPem,
    key: id.keyPem,
    mapping,
    dataDir: gatewayDir,
    upstreamMaxBackoffMs: 5000,
  });

beforeAll(async () => {
  platformDir = tempDir('gw-outage-platform-');
  gatewayDir = tempDir('gw-outage-gateway-');
  tlsPort = await freePort();
  httpPort = await freePort();
  platform = await gatewayPlatform({ dataDir: platformDir, tlsPort, httpPort });
  const a = await admin(platform);
  id = await gatewayIdentity(a.iot, platform, 'gw-outage');
  await telemetryRule(a.api, 'gw_outage_ts', ['counter']);
  plc = await startModbusDevice(await freePort());
  counter = setInterval(() => (plc.input[0] = (plc.input[0]! + 1) & 0xffff), 50);
  mapping = parseMapping(
    JSON.stringify({
      devices: [
        {
          name: 'plc-out',
          protocol: 'modbus',
          host: '127.0.0.1',
          port: plc.port,
          pollIntervalMs: POLL_MS,
          tags: [{ name: 'counter', table: 'input', address: 0, type: 'uint16' }],
        },
      ],
    }),
  );
}, 60_000);

afterAll(async () => {
  clearInterval(counter);
  for (const g of gateways) await g.close().catch(() => undefined);
  await plc?.close();
  await platform?.stop();
}, 60_000);

describe('gateway: store and forward through a platform outage', () => {
  it(
    `loses nothing while the platform is down for ${OUTAGE_MS / 1000} s, replays in order, no duplicates`,
    async () => {
      const p1 = platform!;
      let gw = await start(p1);
      gateways.push(gw);
      await waitFor(
        () => gw.stats().upstream.acked >= 10,
        30_000,
        'ten records acknowledged before the outage',
      );

      // The outage: the platform goes away; polling goes on into the disk queue.
      const stopAt = Date.now();
      const ackedAtStop = gw.stats().upstream.acked;
      await p1.stop();
      platform = undefined;
      const downAt = Date.now();
      const stopMs = downAt - stopAt;
      await waitFor(() => !gw.stats().upstream.connected, 10_000, 'the gateway to see the uplink down');
      const ackedInStop = gw.stats().upstream.acked - ackedAtStop;
      await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
      const midway = gw.stats();
      expect(midway.queue.pending).toBeGreaterThan((OUTAGE_MS / 2 / POLL_MS) * 0.5);

      // The gateway restarts in the middle of the outage: what it queued is on disk.
      const recordsBefore = gw.stats().records;
      await gw.close();
      gw = await start(p1);
      gateways.push(gw);
      expect(gw.queue.stats().pending).toBeGreaterThanOrEqual(midway.queue.pending);
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
      const queuedAtEnd = gw.stats().queue.pending;
      expect(queuedAtEnd).toBeGreaterThan((OUTAGE_MS / POLL_MS) * 0.5);

      // The platform comes back on the same data directory and ports.
      platform = await gatewayPlatform({ dataDir: platformDir, tlsPort, httpPort });
      await waitFor(() => gw.stats().upstream.connected, 60_000, 'the uplink to reconnect');
      await waitFor(
        () => gw.stats().queue.pending < 5,
        120_000,
        'the backlog to drain while polling goes on',
      );
      // Freeze the total: stop polling, let the last records go.
      gw.drivers[0]!.setEnabled(false);
      await waitFor(() => gw.stats().queue.pending === 0, 30_000, 'the queue to empty');

      const total = recordsBefore + gw.stats().records;
      const q = gw.stats().queue;
      // Counters match: every record made was appended, and acknowledged; nothing dropped.
      expect(q.lastSeq).toBe(total);
      expect(q.ackedThrough).toBe(total);
      expect(q.dropped).toEqual({ queue_full: 0, expired: 0, too_large: 0, corrupt: 0 });

      // Every reading is in the store once, in order: sorted by reading time, seq runs 1..total.
      const { api } = await admin(platform);
      let latest: Array<{ ts: number; value: number }> = [];
      const seqs = await waitFor(
        async () => {
          const r = await api('GET', '/timeseries/query', {
            query: { metric: 'seq', thing: 'plc-out', from: '-15m', to: 'now', limit: 100_000 },
          });
          latest = r.points as Array<{ ts: number; value: number }>;
          return latest.length >= total ? latest : null;
        },
        60_000,
        `${total} seq points in the store`,
      ).catch(async (err: Error) => {
        const have = new Set(latest.map((p) => p.value));
        const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !have.has(n));
        const metrics = await (await fetch(`${platform!.endpoints.http}/metrics`)).text();
        const counters = metrics
          .split('\n')
          .filter((l) => /drop|fail|error|rule/i.test(l) && !l.startsWith('#') && !/ 0$/.test(l));
        throw new Error(
          `${err.message}: ${latest.length} stored; missing seq ${missing.slice(0, 40).join(',')}; platform counters: ${counters.join(' | ')}; gateway upstream ${JSON.stringify(gw.stats().upstream)}; stop ${stopMs} ms, acked while stopping ${ackedInStop}`,
        );
      });
      const ordered = [...seqs].sort((a, b) => a.ts - b.ts).map((x) => x.value);
      expect(ordered).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const counters = await api('GET', '/timeseries/query', {
        query: { metric: 'counter', thing: 'plc-out', from: '-15m', to: 'now', limit: 100_000 },
      });
      expect(counters.points).toHaveLength(total);
      console.log(
        `outage ${OUTAGE_MS} ms: ${total} records, ${queuedAtEnd} queued at the end of the outage, ` +
          `resent after reconnect ${gw.stats().upstream.resent}; stop ${stopMs} ms, acked while stopping ${ackedInStop}`,
      );
    },
    OUTAGE_MS + 300_000,
  );
});
