import type { Database } from '../store/index.js';
import { insertOrIgnore, type Page } from './store-sql.js';

/** Thing types (`reg_thing_types`). */

export interface ThingTypeRecord {
  readonly name: string;
  readonly id: string;
  /** ThingTypeProperties as the API sent them (description, searchableAttributes, mqtt5Configuration). */
  readonly properties: Record<string, unknown>;
  readonly deprecated: boolean;
  readonly deprecationDate: number | null;
  readonly createdAt: number;
  readonly tags: ReadonlyArray<{ Key: string; Value?: string }>;
}

export interface ThingTypeStore {
  getType(name: string): Promise<ThingTypeRecord | undefined>;
  insertType(t: ThingTypeRecord): Promise<boolean>;
  updateType(t: ThingTypeRecord): Promise<void>;
  deleteType(name: string): Promise<boolean>;
  listTypes(page: Page & { name?: string | undefined }): Promise<ThingTypeRecord[]>;
}

const typeOf = (r: any): ThingTypeRecord => ({
  name: r.name,
  id: r.id,
  properties: JSON.parse(r.properties),
  deprecated: Boolean(Number(r.deprecated)),
  deprecationDate: r.deprecation_date == null ? null : Number(r.deprecation_date),
  createdAt: Number(r.created_at),
  tags: JSON.parse(r.tags),
});

export function thingTypeStore(db: Database): ThingTypeStore {
  return {
    async getType(name) {
      const rows = await db.query('SELECT * FROM reg_thing_types WHERE name = $1', [name]);
      return rows[0] ? typeOf(rows[0]) : undefined;
    },
    insertType(t) {
      return insertOrIgnore(
        db,
        'INSERT INTO reg_thing_types (name, id, properties, deprecated, deprecation_date, created_at, tags) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [
          t.name,
          t.id,
          JSON.stringify(t.properties),
          t.deprecated ? 1 : 0,
          t.deprecationDate,
          t.createdAt,
          JSON.stringify(t.tags),
        ],
      );
    },
    async updateType(t) {
      await db.run(
        'UPDATE reg_thing_types SET properties = $1, deprecated = $2, deprecation_date = $3 WHERE name = $4',
        [JSON.stringify(t.properties), t.deprecated ? 1 : 0, t.deprecationDate, t.name],
      );
    },
    async deleteType(name) {
      return (await db.run('DELETE FROM reg_thing_types WHERE name = $1', [name])) > 0;
    },
    async listTypes(p) {
      const params: unknown[] = [p.after ?? '', p.limit];
      let extra = '';
      if (p.name !== undefined) {
        params.push(p.name);
        extra = ' AND name = $3';
      }
      const rows = await db.query(
        `SELECT * FROM reg_thing_types WHERE name > $1${extra} ORDER BY name LIMIT $2`,
        params,
      );
      return rows.map(typeOf);
    },
  };
}
