import type { Database } from '../store/index.js';
import { insertOrIgnore, startsWith, type Page } from './store-sql.js';

/** Billing groups (`reg_billing_groups`); a thing's billing group is its `billing_group` column. */

export interface BillingGroupRecord {
  readonly name: string;
  readonly id: string;
  readonly description: string | null;
  readonly version: number;
  readonly createdAt: number;
}

export interface BillingGroupStore {
  getBillingGroup(name: string): Promise<BillingGroupRecord | undefined>;
  insertBillingGroup(b: BillingGroupRecord): Promise<boolean>;
  updateBillingGroup(b: BillingGroupRecord, ifVersion: number): Promise<boolean>;
  /** Delete, and take its things out of it. */
  deleteBillingGroup(name: string): Promise<boolean>;
  listBillingGroups(page: Page & { namePrefix?: string | undefined }): Promise<BillingGroupRecord[]>;
}

const billingOf = (r: any): BillingGroupRecord => ({
  name: r.name,
  id: r.id,
  description: r.description,
  version: Number(r.version),
  createdAt: Number(r.created_at),
});

export function billingGroupStore(db: Database): BillingGroupStore {
  return {
    async getBillingGroup(name) {
      const rows = await db.query('SELECT * FROM reg_billing_groups WHERE name = $1', [name]);
      return rows[0] ? billingOf(rows[0]) : undefined;
    },
    insertBillingGroup(b) {
      return insertOrIgnore(
        db,
        'INSERT INTO reg_billing_groups (name, id, description, version, created_at) VALUES ($1, $2, $3, $4, $5)',
        [b.name, b.id, b.description, b.version, b.createdAt],
      );
    },
    async updateBillingGroup(b, ifVersion) {
      return (
        (await db.run(
          'UPDATE reg_billing_groups SET description = $1, version = $2 WHERE name = $3 AND version = $4',
          [b.description, b.version, b.name, ifVersion],
        )) > 0
      );
    },
    async deleteBillingGroup(name) {
      const [deleted] = await db.batch(
        [
          { sql: 'DELETE FROM reg_billing_groups WHERE name = $1', params: [name] },
          { sql: 'UPDATE reg_things SET billing_group = NULL WHERE billing_group = $1', params: [name] },
        ],
        { guard: true },
      );
      return (deleted ?? 0) > 0;
    },
    async listBillingGroups(p) {
      const params: unknown[] = [p.after ?? '', p.limit];
      let extra = '';
      if (p.namePrefix !== undefined) {
        params.push(p.namePrefix);
        extra = ` AND ${startsWith('name', '$3')}`;
      }
      const rows = await db.query(
        `SELECT * FROM reg_billing_groups WHERE name > $1${extra} ORDER BY name LIMIT $2`,
        params,
      );
      return rows.map(billingOf);
    },
  };
}
