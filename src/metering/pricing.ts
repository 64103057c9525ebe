/**
 * The cost report: the ledger priced with a price table file (pricing/aws-iot-core.json,
 * pricing/azure-iot-hub.json are the shipped examples, each with its source URL and the date it was read).
 *
 * Two pricing models:
 * - `metered` (AWS IoT Core): each item prices the sum of its units, per `per` units, with volume tiers
 *   applied to the report's total (AWS's tiers are monthly: a report over one month prices as AWS would).
 * - `capacity` (Azure IoT Hub): an edition is bought in units with a daily message allowance; the report
 *   takes the busiest UTC day of the range, picks the cheapest edition (and unit count) that carries it,
 *   and prorates its monthly price over the days of the range.
 * Costs are split over things or billing groups in proportion to what each used of each item.
 */
import { readFileSync } from 'node:fs';
import { E } from '../errors/index.js';
import type { UsageRow } from './meter.js';
import { UNITS, isUnit, type Unit } from './units.js';

export interface PriceTier {
  /** Cumulative units (before `per`) up to which this tier applies, e.g. 1e9 messages; null: no bound. */
  readonly upTo: number | null;
  readonly price: number;
}

export interface MeteredItem {
  readonly name: string;
  readonly units: readonly Unit[];
  /** The price is per this many units (AWS: per million). */
  readonly per: number;
  readonly tiers: readonly PriceTier[];
  /** False where the figure could not be confirmed against the source page when it was read. */
  readonly confirmed?: boolean;
}

export interface CapacityEdition {
  readonly name: string;
  readonly perUnitPerMonth: number;
  readonly messagesPerDayPerUnit: number;
  readonly maxUnits: number;
  readonly confirmed?: boolean;
}

export interface PriceTable {
  readonly provider: string;
  readonly currency: string;
  readonly region?: string;
  readonly source: string;
  /** ISO date the prices were read from the source. */
  readonly readOn: string;
  readonly notes?: readonly string[];
  readonly model: 'metered' | 'capacity';
  readonly items?: readonly MeteredItem[];
  readonly capacity?: {
    readonly units: readonly Unit[];
    readonly editions: readonly CapacityEdition[];
  };
}

export interface CostLine {
  readonly item: string;
  readonly quantity: number;
  readonly cost: number;
  readonly confirmed: boolean;
  readonly detail?: string;
}

export interface CostReport {
  readonly provider: string;
  readonly currency: string;
  readonly source: string;
  readonly readOn: string;
  readonly from: string;
  readonly to: string;
  readonly lines: readonly CostLine[];
  readonly total: number;
  /** Cost per thing or billing group (proportional split), when asked for. */
  readonly by?: Readonly<Record<string, number>>;
  readonly notes: readonly string[];
}

/** Read and check a price table file; every problem names the file and the field. */
export function loadPriceTable(file: string): PriceTable {
  let table: unknown;
  try {
    table = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`price table ${file}: ${(err as Error).message}`, { cause: err });
  }
  return checkPriceTable(table, file);
}

export function checkPriceTable(t: unknown, file = 'price table'): PriceTable {
  const fail = (what: string): never => {
    throw new Error(`${file}: ${what}`);
  };
  if (typeof t !== 'object' || t === null) return fail('not a JSON object');
  const p = t as Record<string, unknown>;
  for (const key of ['provider', 'currency', 'source', 'readOn'])
    if (typeof p[key] !== 'string' || !p[key]) fail(`"${key}" must be a non-empty string`);
  const unitsOk = (units: unknown, where: string) => {
    if (!Array.isArray(units) || units.length === 0) fail(`${where}.units must be a list of units`);
    for (const u of units as unknown[])
      if (typeof u !== 'string' || !isUnit(u)) throw E.UsageUnit({ unit: String(u), units: UNITS });
  };
  if (p.model === 'metered') {
    if (!Array.isArray(p.items) || p.items.length === 0) fail('"items" must list the priced items');
    (p.items as unknown[]).forEach((item, i) => {
      const it = item as Record<string, unknown>;
      if (typeof it.name !== 'string') fail(`items[${i}].name must be a string`);
      unitsOk(it.units, `items[${i}]`);
      if (typeof it.per !== 'number' || it.per <= 0) fail(`items[${i}].per must be a number > 0`);
      if (!Array.isArray(it.tiers) || it.tiers.length === 0) fail(`items[${i}].tiers must list price tiers`);
      for (const tier of it.tiers as Array<Record<string, unknown>>)
        if (typeof tier.price !== 'number' || (tier.upTo !== null && typeof tier.upTo !== 'number'))
          fail(`items[${i}].tiers: each needs "price" (number) and "upTo" (number or null)`);
    });
  } else if (p.model === 'capacity') {
    const c = p.capacity as Record<string, unknown> | undefined;
    if (!c) return fail('"capacity" is required with model "capacity"');
    unitsOk(c.units, 'capacity');
    if (!Array.isArray(c.editions) || c.editions.length === 0) fail('capacity.editions must list editions');
    for (const e of c.editions as Array<Record<string, unknown>>)
      if (
        typeof e.name !== 'string' ||
        typeof e.perUnitPerMonth !== 'number' ||
        typeof e.messagesPerDayPerUnit !== 'number' ||
        typeof e.maxUnits !== 'number'
      )
        fail('capacity.editions: each needs name, perUnitPerMonth, messagesPerDayPerUnit, maxUnits');
  } else fail('"model" must be "metered" or "capacity"');
  return p as unknown as PriceTable;
}

/** Tiered cost of `quantity` units priced per `per`. */
function tiered(quantity: number, per: number, tiers: readonly PriceTier[]): number {
  let left = quantity / per;
  let floor = 0;
  let cost = 0;
  for (const t of tiers) {
    const cap = t.upTo === null ? Infinity : t.upTo / per - floor;
    const take = Math.min(left, cap);
    cost += take * t.price;
    left -= take;
    floor += take;
    if (left <= 0) break;
  }
  return cost;
}

const DAY_MS = 86_400_000;
const round = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * Price ledger rows of [from, to) with a price table; `by` splits the cost over things or billing groups.
 * @example priceUsage(rows, loadPriceTable('pricing/aws-iot-core.json'), { from, to, by: 'billingGroup' })
 */
export function priceUsage(
  rows: readonly UsageRow[],
  table: PriceTable,
  range: { from: number; to: number; by?: 'thing' | 'billingGroup' | undefined },
): CostReport {
  const key = (r: UsageRow) => (range.by === 'thing' ? r.thing : r.billingGroup || '(none)');
  const lines: CostLine[] = [];
  const by = new Map<string, number>();
  const split = (cost: number, pick: (r: UsageRow) => number) => {
    if (!range.by || cost === 0) return;
    const shares = new Map<string, number>();
    let total = 0;
    for (const r of rows) {
      const n = pick(r);
      if (n === 0) continue;
      shares.set(key(r), (shares.get(key(r)) ?? 0) + n);
      total += n;
    }
    for (const [k, n] of shares) by.set(k, (by.get(k) ?? 0) + (cost * n) / total);
  };
  const notes = [...(table.notes ?? [])];
  if (table.model === 'metered') {
    for (const item of table.items ?? []) {
      const pick = (r: UsageRow) => (item.units.includes(r.unit) ? r.amount : 0);
      const quantity = rows.reduce((s, r) => s + pick(r), 0);
      const cost = tiered(quantity, item.per, item.tiers);
      lines.push({ item: item.name, quantity, cost: round(cost), confirmed: item.confirmed !== false });
      split(cost, pick);
    }
  } else {
    const cap = table.capacity!;
    const perDay = new Map<number, number>();
    for (const r of rows)
      if (cap.units.includes(r.unit)) {
        const day = Math.floor(r.hour / DAY_MS);
        perDay.set(day, (perDay.get(day) ?? 0) + r.amount);
      }
    const peak = Math.max(0, ...perDay.values());
    const days = Math.max(1, Math.ceil((range.to - range.from) / DAY_MS));
    let best: { edition: CapacityEdition; units: number; cost: number } | null = null;
    for (const e of cap.editions) {
      const units = Math.max(1, Math.ceil(peak / e.messagesPerDayPerUnit));
      if (units > e.maxUnits) continue;
      const cost = (units * e.perUnitPerMonth * days) / 30;
      if (!best || cost < best.cost) best = { edition: e, units, cost };
    }
    if (best) {
      lines.push({
        item: `${best.edition.name} x ${best.units}`,
        quantity: peak,
        cost: round(best.cost),
        confirmed: best.edition.confirmed !== false,
        detail: `busiest day ${peak} messages; ${best.edition.messagesPerDayPerUnit} per unit per day; ${days} day(s) of a 30-day month`,
      });
      split(best.cost, (r) => (cap.units.includes(r.unit) ? r.amount : 0));
    } else notes.push(`no edition carries the busiest day (${peak} messages)`);
  }
  const total = round(lines.reduce((s, l) => s + l.cost, 0));
  return {
    provider: table.provider,
    currency: table.currency,
    source: table.source,
    readOn: table.readOn,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    lines,
    total,
    ...(range.by ? { by: Object.fromEntries([...by].map(([k, v]) => [k, round(v)])) } : {}),
    notes,
  };
}
