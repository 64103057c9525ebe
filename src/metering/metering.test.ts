import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { openDatabase } from '../store/index.js';
import { freshPgSchema, postgresUrl } from '../../test/compat/harness.js';
import type { AuthzSubject } from '../mqtt/index.js';
import { Meter, type UsageRow } from './meter.js';
import { AWS_THING_DEFAULTS, Bucket, type Limits } from './quotas.js';
import { createMeteringStore } from './store.js';
import { loadPriceTable, priceUsage } from './pricing.js';
import { units1k, units4k, units5k } from './units.js';

test("AWS's 5 KB blocks: 0..5120 bytes is one message, 5121 is two; Azure's 4 KB and the 1 KB operations", () => {
  expect([0, 1, 5120, 5121, 10240, 10241].map(units5k)).toEqual([1, 1, 1, 2, 2, 3]);
  expect([0, 4096, 4097, 6144].map(units4k)).toEqual([1, 1, 2, 2]);
  expect([0, 1024, 1025, 8192].map(units1k)).toEqual([1, 1, 2, 8]);
});

const subject = (clientId: string, thingName?: string): AuthzSubject => ({
  clientId,
  principal: { kind: thingName ? 'certificate' : 'anonymous', id: 'p', thingName },
  info: { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2 },
});

function meter(clock: { t: number }, explicit: Map<string, Partial<Limits>> = new Map()) {
  return new Meter({
    now: () => clock.t,
    groupOf: (thing) => (thing === 'g1' ? 'team' : null),
    explicit: () => ({ things: explicit, groups: new Map() }),
    thingDefaults: AWS_THING_DEFAULTS,
    onThrottle: () => undefined,
  });
}

const sum = (rows: UsageRow[], unit: string, hour?: number) =>
  rows
    .filter((r) => r.unit === unit && (hour === undefined || r.hour === hour))
    .reduce((s, r) => s + r.amount, 0);

test('connection minutes are started minutes, split over the hours they fall in', () => {
  const clock = { t: Date.UTC(2030, 0, 1, 9, 58, 30) };
  const m = meter(clock);
  const c = m.open(subject('d1'), 0);
  m.drain(); // minute 1 is charged at 09:58:30
  clock.t = Date.UTC(2030, 0, 1, 10, 0, 0); // the hour boundary drain: 1.5 minutes -> 2
  m.drain();
  clock.t = Date.UTC(2030, 0, 1, 10, 3, 0); // 4.5 minutes in all -> 5
  c.close();
  m.drain();
  const rows = m.takeRows();
  expect(sum(rows, 'connection_minutes', Date.UTC(2030, 0, 1, 9))).toBe(2);
  expect(sum(rows, 'connection_minutes', Date.UTC(2030, 0, 1, 10))).toBe(3);
  expect(sum(rows, 'messages_in')).toBe(1); // the CONNECT
  expect(m.takeRows()).toEqual([]);
});

test('thing defaults (AWS: 100 publishes/s) apply to things, not to anonymous clients; explicit limits to both', () => {
  const clock = { t: 1_000_000 };
  const explicit = new Map<string, Partial<Limits>>([['anon-limited', { publishRate: 2 }]]);
  const m = meter(clock, explicit);
  const device = m.open(subject('dev', 'dev'), 0);
  const anon = m.open(subject('anon'), 0);
  const limited = m.open(subject('anon-limited'), 0);
  const codes = (u: typeof device, n: number) => Array.from({ length: n }, () => u.publishIn(10, false, 't'));
  expect(codes(device, 100).every((c) => c === 0)).toBe(true);
  expect(device.publishIn(10, false, 't')).toBe(0x97);
  expect(device.refusal).toContain('quota exceeded: publishRate 100/s of thing dev');
  expect(codes(anon, 500).every((c) => c === 0)).toBe(true);
  expect(codes(limited, 3)).toEqual([0, 0, 0x97]);
  clock.t += 500; // half a second refills one token at 2/s
  expect(codes(limited, 2)).toEqual([0, 0x97]);
  m.drain();
  const rows = m.takeRows();
  expect(rows.find((r) => r.thing === 'dev' && r.unit === 'throttled')?.amount).toBe(1);
  expect(rows.find((r) => r.thing === 'dev' && r.unit === 'messages_in')?.amount).toBe(1 + 100);
});

test('a bucket passes one request bigger than itself when full, then refuses until it refills', () => {
  const b = new Bucket(1000, 0);
  expect(b.take(5000, 0)).toBe(true);
  expect(b.take(1, 1000)).toBe(false); // in debt: -4000 + 1000
  expect(b.take(1, 5000)).toBe(true);
});

test('the shipped price tables load and price a known ledger (AWS metered, Azure capacity)', () => {
  const hour = Date.UTC(2030, 0, 1);
  const rows: UsageRow[] = [
    { hour, thing: 'a', billingGroup: 'red', unit: 'messages_in', amount: 600_000 },
    { hour, thing: 'b', billingGroup: 'blue', unit: 'messages_out', amount: 400_000 },
    { hour, thing: 'a', billingGroup: 'red', unit: 'connection_minutes', amount: 2_000_000 },
    { hour, thing: 'a', billingGroup: 'red', unit: 'messages_in_4kb', amount: 700_000 },
    { hour, thing: 'b', billingGroup: 'blue', unit: 'messages_out_4kb', amount: 100_000 },
  ];
  const range = { from: hour, to: hour + 86_400_000, by: 'billingGroup' as const };
  const aws = priceUsage(rows, loadPriceTable('pricing/aws-iot-core.json'), range);
  expect(aws.lines.find((l) => l.item.startsWith('Messaging'))).toMatchObject({
    quantity: 1_000_000,
    cost: 1,
  });
  expect(aws.lines.find((l) => l.item.startsWith('Connectivity'))).toMatchObject({ cost: 0.16 });
  expect(aws.total).toBeCloseTo(1.16, 6);
  expect(aws.by!.red).toBeCloseTo(0.6 + 0.16, 6);
  expect(aws.by!.blue).toBeCloseTo(0.4, 6);
  // Azure: 800,000 4 KB messages on the busiest day need two S1 units, one day of a 30-day month.
  const azure = priceUsage(rows, loadPriceTable('pricing/azure-iot-hub.json'), range);
  expect(azure.lines).toEqual([expect.objectContaining({ item: 'S1 x 2', quantity: 800_000 })]);
  expect(azure.total).toBeCloseTo((2 * 25) / 30, 6);
});

test('AWS message tiers apply to the total: 6 billion messages cost 1000 + 3200 + 700', () => {
  const rows: UsageRow[] = [{ hour: 0, thing: 'a', billingGroup: '', unit: 'messages_in', amount: 6e9 }];
  const report = priceUsage(rows, loadPriceTable('pricing/aws-iot-core.json'), { from: 0, to: 86_400_000 });
  expect(report.lines.find((l) => l.item.startsWith('Messaging'))!.cost).toBeCloseTo(4900, 6);
});

// The ledger store, the same contract on SQLite and PostgreSQL: flushes add up, ranges and filters hold.
const pg = await postgresUrl();
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.each(['sqlite', ...(pg ? ['postgres'] : [])])('metering store on %s', (kind) => {
  test('adds amounts per (hour, thing, group, unit), queries by range, thing, group and unit; quotas set and removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metering-store-'));
    dirs.push(dir);
    const schema = kind === 'postgres' ? await freshPgSchema(pg!) : null;
    const db = await openDatabase({ dataDir: dir, databaseUrl: schema?.url ?? null });
    try {
      const store = await createMeteringStore(db);
      const h = Date.UTC(2030, 0, 1, 10);
      const row = (
        thing: string,
        unit: UsageRow['unit'],
        amount: number,
        hour = h,
        billingGroup = '',
      ): UsageRow => ({
        hour,
        thing,
        billingGroup,
        unit,
        amount,
      });
      await store.add([row('a', 'messages_in', 3), row('b', 'messages_in', 1, h, 'red')]);
      await store.add([row('a', 'messages_in', 4), row('a', 'messages_out', 2, h + 3_600_000)]);
      expect(await store.query({ from: h, to: h + 7_200_000 })).toEqual([
        row('a', 'messages_in', 7),
        row('b', 'messages_in', 1, h, 'red'),
        row('a', 'messages_out', 2, h + 3_600_000),
      ]);
      expect(await store.query({ from: h, to: h + 3_600_000, things: ['a'] })).toEqual([
        row('a', 'messages_in', 7),
      ]);
      expect(await store.query({ from: h, to: h + 7_200_000, billingGroup: 'red' })).toHaveLength(1);
      expect(await store.query({ from: h, to: h + 7_200_000, units: ['messages_out'] })).toHaveLength(1);
      // 500 rows in one flush: chunked statements, one transaction.
      await store.add(Array.from({ length: 500 }, (_, i) => row(`t${i}`, 'bytes_in', i + 1, h + 7_200_000)));
      const big = await store.query({ from: h + 7_200_000, to: h + 10_800_000 });
      expect(big.reduce((s, r) => s + r.amount, 0)).toBe((500 * 501) / 2);

      await store.setQuotas('thing', 'a', { publishRate: 5, apiRate: 1 }, 1);
      await store.setQuotas('thing', 'a', { apiRate: null }, 2);
      await store.setQuotas('billingGroup', 'red', { subscriptions: 3 }, 3);
      expect(await store.quotas()).toEqual([
        { kind: 'billingGroup', name: 'red', limit: 'subscriptions', value: 3 },
        { kind: 'thing', name: 'a', limit: 'publishRate', value: 5 },
      ]);
    } finally {
      await db.close();
      await schema?.drop();
    }
  });
});
