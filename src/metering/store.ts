/**
 * The usage ledger and quota limits in the platform database (SQLite or PostgreSQL, one SQL text).
 *
 * - `usage_hourly`: one row per (UTC hour, thing, billing group, unit) with its amount. Flushes add to the
 *   row (INSERT ... ON CONFLICT DO UPDATE SET amount = amount + excluded.amount), so several nodes sharing a
 *   PostgreSQL database and repeated flushes of one hour all sum correctly.
 * - `metering_quotas`: explicit limits, one row per (scope kind, scope name, limit); null value rows are
 *   deleted (no limit set).
 */
import { migrate, type Database, type Migration } from '../store/index.js';
import type { LimitName, Limits } from './quotas.js';
import type { UsageRow } from './meter.js';
import type { Unit } from './units.js';

const tables = (big: string) => `
  CREATE TABLE usage_hourly (
    hour ${big} NOT NULL, thing TEXT NOT NULL, billing_group TEXT NOT NULL, unit TEXT NOT NULL,
    amount ${big} NOT NULL, PRIMARY KEY (hour, thing, billing_group, unit));
  CREATE INDEX usage_hourly_thing ON usage_hourly (thing, hour);
  CREATE INDEX usage_hourly_group ON usage_hourly (billing_group, hour);
  CREATE TABLE metering_quotas (
    scope_kind TEXT NOT NULL, scope_name TEXT NOT NULL, limit_name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
    updated_at ${big} NOT NULL, PRIMARY KEY (scope_kind, scope_name, limit_name));
`;

export const METERING_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'hourly usage ledger and quota limits',
    sqlite: tables('INTEGER'),
    postgres: tables('BIGINT'),
  },
];

export interface UsageQuery {
  readonly from: number;
  readonly to: number;
  readonly things?: readonly string[];
  readonly billingGroup?: string;
  readonly units?: readonly Unit[];
}

export interface QuotaRow {
  readonly kind: 'thing' | 'billingGroup';
  readonly name: string;
  readonly limit: LimitName;
  readonly value: number;
}

/** Rows per INSERT statement of a flush (bounded statement size). */
const CHUNK = 200;

export interface MeteringStore {
  /** Add the rows to the ledger in one transaction. */
  add(rows: readonly UsageRow[]): Promise<void>;
  /** Ledger rows in [from, to) (hours), filtered, ordered by hour, thing, unit. */
  query(q: UsageQuery): Promise<UsageRow[]>;
  quotas(): Promise<QuotaRow[]>;
  /** Set (value) or remove (null) explicit limits of one scope, in one transaction. */
  setQuotas(
    kind: 'thing' | 'billingGroup',
    name: string,
    limits: Partial<Limits>,
    now: number,
  ): Promise<void>;
}

export async function createMeteringStore(db: Database): Promise<MeteringStore> {
  await migrate(db, 'metering', METERING_MIGRATIONS);
  return {
    async add(rows) {
      if (rows.length === 0) return;
      const statements = [];
      for (let i = 0; i < rows.length; i += CHUNK) {
        const chunk = rows.slice(i, i + CHUNK);
        const params: unknown[] = [];
        const values = chunk.map((r, j) => {
          params.push(r.hour, r.thing, r.billingGroup, r.unit, Math.round(r.amount));
          const b = j * 5;
          return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5})`;
        });
        statements.push({
          sql:
            `INSERT INTO usage_hourly (hour, thing, billing_group, unit, amount) VALUES ${values.join(', ')} ` +
            'ON CONFLICT (hour, thing, billing_group, unit) DO UPDATE SET amount = usage_hourly.amount + excluded.amount',
          params,
        });
      }
      await db.batch(statements);
    },

    async query(q) {
      const where = ['hour >= $1', 'hour < $2'];
      const params: unknown[] = [q.from, q.to];
      if (q.things?.length) {
        where.push(`thing IN (${q.things.map((t) => `$${params.push(t)}`).join(', ')})`);
      }
      if (q.billingGroup !== undefined) where.push(`billing_group = $${params.push(q.billingGroup)}`);
      if (q.units?.length) where.push(`unit IN (${q.units.map((u) => `$${params.push(u)}`).join(', ')})`);
      const rows = await db.query<{
        hour: number | string;
        thing: string;
        billing_group: string;
        unit: Unit;
        amount: number | string;
      }>(
        `SELECT hour, thing, billing_group, unit, amount FROM usage_hourly WHERE ${where.join(' AND ')} ` +
          'ORDER BY hour, thing, billing_group, unit',
        params,
      );
      return rows.map((r) => ({
        hour: Number(r.hour),
        thing: r.thing,
        billingGroup: r.billing_group,
        unit: r.unit,
        amount: Number(r.amount),
      }));
    },

    async quotas() {
      const rows = await db.query<{
        scope_kind: string;
        scope_name: string;
        limit_name: string;
        value: number;
      }>(
        'SELECT scope_kind, scope_name, limit_name, value FROM metering_quotas ORDER BY scope_kind, scope_name, limit_name',
      );
      return rows.map((r) => ({
        kind: r.scope_kind as QuotaRow['kind'],
        name: r.scope_name,
        limit: r.limit_name as LimitName,
        value: Number(r.value),
      }));
    },

    async setQuotas(kind, name, limits, now) {
      const statements = Object.entries(limits).map(([limit, value]) =>
        value === null || value === undefined
          ? {
              sql: 'DELETE FROM metering_quotas WHERE scope_kind = $1 AND scope_name = $2 AND limit_name = $3',
              params: [kind, name, limit],
            }
          : {
              sql:
                'INSERT INTO metering_quotas (scope_kind, scope_name, limit_name, value, updated_at) VALUES ($1, $2, $3, $4, $5) ' +
                'ON CONFLICT (scope_kind, scope_name, limit_name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
              params: [kind, name, limit, value, now],
            },
      );
      if (statements.length) await db.batch(statements);
    },
  };
}
