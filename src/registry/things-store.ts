import type { Database, Statement } from '../store/index.js';
import { startsWith, type Page } from './store-sql.js';

/** Things and their attribute rows (`reg_things`, `reg_thing_attributes`). */

export type Attributes = Record<string, string>;

export interface ThingRecord {
  readonly name: string;
  readonly id: string;
  readonly typeName: string | null;
  readonly attributes: Attributes;
  readonly version: number;
  readonly billingGroup: string | null;
  readonly createdAt: number;
}

export interface ThingStore {
  getThing(name: string): Promise<ThingRecord | undefined>;
  /** Insert; false when the name is taken. */
  insertThing(thing: ThingRecord): Promise<boolean>;
  /** Replace the mutable fields when the stored version is `ifVersion`; the stored version becomes thing.version. */
  updateThing(thing: ThingRecord, ifVersion: number): Promise<boolean>;
  /** Delete (with its memberships and principals) when the version matches (any version when undefined). */
  deleteThing(name: string, ifVersion?: number): Promise<boolean>;
  listThings(
    page: Page & {
      typeName?: string | undefined;
      attributeName?: string | undefined;
      attributeValue?: string | undefined;
      prefix?: boolean | undefined;
      billingGroup?: string | undefined;
    },
  ): Promise<ThingRecord[]>;
  /** Every thing, for building the search index at start. */
  allThings(): Promise<ThingRecord[]>;
  countThingsOfType(typeName: string): Promise<number>;
}

interface ThingRow {
  name: string;
  id: string;
  type_name: string | null;
  attributes: string;
  version: number | string;
  billing_group: string | null;
  created_at: number | string;
}

const thingOf = (r: ThingRow): ThingRecord => ({
  name: r.name,
  id: r.id,
  typeName: r.type_name,
  attributes: JSON.parse(r.attributes) as Attributes,
  version: Number(r.version),
  billingGroup: r.billing_group,
  createdAt: Number(r.created_at),
});

/** One multi-row INSERT for a thing's attribute rows (at most 50); none when it has none. */
function attributesInsert(name: string, attributes: Attributes): Statement[] {
  const entries = Object.entries(attributes);
  if (entries.length === 0) return [];
  const params: unknown[] = [];
  const rows = entries.map(([k, v]) => {
    params.push(k, v, name);
    const n = params.length;
    return `($${n - 2}, $${n - 1}, $${n})`;
  });
  return [
    {
      sql: `INSERT INTO reg_thing_attributes (attr_name, value, thing_name) VALUES ${rows.join(', ')}`,
      params,
    },
  ];
}

/**
 * A thing and its attribute rows are written together in one guarded `batch`: the thing row first, the rest
 * only when it changed (a stale version or a taken name writes nothing).
 */
export function thingStore(db: Database): ThingStore {
  const guarded = async (statements: Statement[]) =>
    ((await db.batch(statements, { guard: true }))[0] ?? 0) > 0;
  return {
    async getThing(name) {
      const rows = await db.query<ThingRow>('SELECT * FROM reg_things WHERE name = $1', [name]);
      return rows[0] ? thingOf(rows[0]) : undefined;
    },
    insertThing(t) {
      return guarded([
        {
          sql:
            'INSERT INTO reg_things (name, id, type_name, attributes, version, billing_group, created_at) ' +
            'VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING',
          params: [
            t.name,
            t.id,
            t.typeName,
            JSON.stringify(t.attributes),
            t.version,
            t.billingGroup,
            t.createdAt,
          ],
        },
        ...attributesInsert(t.name, t.attributes),
      ]);
    },
    updateThing(t, ifVersion) {
      return guarded([
        {
          sql: 'UPDATE reg_things SET type_name = $1, attributes = $2, version = $3, billing_group = $4 WHERE name = $5 AND version = $6',
          params: [t.typeName, JSON.stringify(t.attributes), t.version, t.billingGroup, t.name, ifVersion],
        },
        { sql: 'DELETE FROM reg_thing_attributes WHERE thing_name = $1', params: [t.name] },
        ...attributesInsert(t.name, t.attributes),
      ]);
    },
    deleteThing(name, ifVersion) {
      return guarded([
        ifVersion === undefined
          ? { sql: 'DELETE FROM reg_things WHERE name = $1', params: [name] }
          : { sql: 'DELETE FROM reg_things WHERE name = $1 AND version = $2', params: [name, ifVersion] },
        { sql: 'DELETE FROM reg_group_members WHERE thing_name = $1', params: [name] },
        { sql: 'DELETE FROM reg_thing_principals WHERE thing_name = $1', params: [name] },
        { sql: 'DELETE FROM reg_thing_attributes WHERE thing_name = $1', params: [name] },
      ]);
    },
    async listThings(p) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (cond: (n: string) => string, v: unknown) => {
        params.push(v);
        where.push(cond(`$${params.length}`));
      };
      // With an attribute filter, order and page on the attribute row's thing_name so an exact-value filter
      // is one range scan of the (attr_name, value, thing_name) key, without a sort.
      const attr = p.attributeName !== undefined;
      const key = attr ? 'a.thing_name' : 't.name';
      const from = attr
        ? 'reg_thing_attributes a JOIN reg_things t ON t.name = a.thing_name'
        : 'reg_things t';
      if (attr) {
        add((n) => `a.attr_name = ${n}`, p.attributeName);
        if (p.attributeValue !== undefined) {
          if (p.prefix) add((n) => startsWith('a.value', n), p.attributeValue);
          else add((n) => `a.value = ${n}`, p.attributeValue);
        }
      }
      if (p.after !== undefined) add((n) => `${key} > ${n}`, p.after);
      if (p.typeName !== undefined) add((n) => `t.type_name = ${n}`, p.typeName);
      if (p.billingGroup !== undefined) add((n) => `t.billing_group = ${n}`, p.billingGroup);
      params.push(p.limit);
      const rows = await db.query<ThingRow>(
        `SELECT t.* FROM ${from} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${key} LIMIT $${params.length}`,
        params,
      );
      return rows.map(thingOf);
    },
    async allThings() {
      return (await db.query<ThingRow>('SELECT * FROM reg_things ORDER BY name')).map(thingOf);
    },
    async countThingsOfType(typeName) {
      const rows = await db.query<{ n: number | string }>(
        'SELECT COUNT(*) AS n FROM reg_things WHERE type_name = $1',
        [typeName],
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}
