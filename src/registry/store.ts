import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * The registry's storage interface and its SQL implementation. One implementation serves both engines of
 * the store foundation (SQLite and PostgreSQL) through portable `$n` SQL; the dialect differences live in
 * the migrations (BIGINT, COLLATE "C", JSON backfill). The contract suite
 * (test/integration/registry-contract.test.ts) runs against both.
 *
 * Contracts: names are primary keys (case-sensitive); list methods return rows in ascending name order after
 * the keyset cursor `after`; conditional updates return false when the stored version differs.
 */

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

export interface DynamicQuery {
  readonly queryString: string;
  readonly indexName: string;
  readonly queryVersion: string;
}

export interface ThingGroupRecord {
  readonly name: string;
  readonly id: string;
  readonly parentName: string | null;
  readonly description: string | null;
  readonly attributes: Attributes;
  readonly version: number;
  readonly createdAt: number;
  readonly dynamic: DynamicQuery | null;
  readonly tags: ReadonlyArray<{ Key: string; Value?: string }>;
}

export interface BillingGroupRecord {
  readonly name: string;
  readonly id: string;
  readonly description: string | null;
  readonly version: number;
  readonly createdAt: number;
}

export interface Page {
  readonly after?: string | undefined;
  readonly limit: number;
}

interface Statement {
  readonly sql: string;
  readonly params: unknown[];
}

export interface RegistryStore {
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

  getType(name: string): Promise<ThingTypeRecord | undefined>;
  insertType(t: ThingTypeRecord): Promise<boolean>;
  updateType(t: ThingTypeRecord): Promise<void>;
  deleteType(name: string): Promise<boolean>;
  listTypes(page: Page & { name?: string | undefined }): Promise<ThingTypeRecord[]>;

  getGroup(name: string): Promise<ThingGroupRecord | undefined>;
  insertGroup(g: ThingGroupRecord): Promise<boolean>;
  updateGroup(g: ThingGroupRecord, ifVersion: number): Promise<boolean>;
  deleteGroup(name: string): Promise<boolean>;
  listGroups(
    page: Page & { parent?: string | undefined; namePrefix?: string | undefined; names?: readonly string[] },
  ): Promise<ThingGroupRecord[]>;
  allGroups(): Promise<ThingGroupRecord[]>;
  countChildren(parent: string): Promise<number>;

  /** Static memberships. */
  addMember(group: string, thing: string): Promise<boolean>;
  removeMember(group: string, thing: string): Promise<boolean>;
  groupsOfThing(thing: string): Promise<string[]>;
  /** Things directly in any of `groups`, distinct, ascending. */
  thingsInGroups(groups: readonly string[], page: Page): Promise<string[]>;
  allMemberships(): Promise<Array<{ group: string; thing: string }>>;

  attachPrincipal(thing: string, principal: string, type: string): Promise<void>;
  detachPrincipal(thing: string, principal: string): Promise<boolean>;
  principalsOfThing(thing: string, page: Page): Promise<Array<{ principal: string; type: string }>>;
  thingsOfPrincipal(principal: string, page: Page): Promise<Array<{ thing: string; type: string }>>;

  getBillingGroup(name: string): Promise<BillingGroupRecord | undefined>;
  insertBillingGroup(b: BillingGroupRecord): Promise<boolean>;
  updateBillingGroup(b: BillingGroupRecord, ifVersion: number): Promise<boolean>;
  deleteBillingGroup(name: string): Promise<boolean>;
  listBillingGroups(page: Page & { namePrefix?: string | undefined }): Promise<BillingGroupRecord[]>;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

/** `text` is `TEXT COLLATE "C"` on PostgreSQL so names sort bytewise on both engines (keyset pagination). */
const DDL = (bigint: string, text: string) =>
  `
CREATE TABLE reg_things (name TEXT PRIMARY KEY, id TEXT NOT NULL, type_name TEXT, attributes TEXT NOT NULL,
  version ${bigint} NOT NULL, billing_group TEXT, created_at ${bigint} NOT NULL);
CREATE INDEX reg_things_type ON reg_things (type_name, name);
CREATE INDEX reg_things_billing ON reg_things (billing_group, name);
CREATE TABLE reg_thing_types (name TEXT PRIMARY KEY, id TEXT NOT NULL, properties TEXT NOT NULL,
  deprecated INTEGER NOT NULL, deprecation_date ${bigint}, created_at ${bigint} NOT NULL, tags TEXT NOT NULL);
CREATE TABLE reg_thing_groups (name TEXT PRIMARY KEY, id TEXT NOT NULL, parent_name TEXT, description TEXT,
  attributes TEXT NOT NULL, version ${bigint} NOT NULL, created_at ${bigint} NOT NULL, dynamic_query TEXT,
  tags TEXT NOT NULL);
CREATE INDEX reg_thing_groups_parent ON reg_thing_groups (parent_name, name);
CREATE TABLE reg_group_members (group_name TEXT NOT NULL, thing_name TEXT NOT NULL,
  PRIMARY KEY (group_name, thing_name));
CREATE INDEX reg_group_members_thing ON reg_group_members (thing_name);
CREATE TABLE reg_thing_principals (thing_name TEXT NOT NULL, principal TEXT NOT NULL, principal_type TEXT NOT NULL,
  PRIMARY KEY (thing_name, principal));
CREATE INDEX reg_thing_principals_principal ON reg_thing_principals (principal, thing_name);
CREATE TABLE reg_billing_groups (name TEXT PRIMARY KEY, id TEXT NOT NULL, description TEXT,
  version ${bigint} NOT NULL, created_at ${bigint} NOT NULL);
CREATE TABLE reg_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`.replace(/\bTEXT\b/g, text);

/** One row per thing attribute, so ListThings attribute filters are index range scans. */
const ATTRIBUTES_DDL = (text: string) =>
  `CREATE TABLE reg_thing_attributes (attr_name ${text} NOT NULL, value ${text} NOT NULL, thing_name ${text} NOT NULL,
  PRIMARY KEY (attr_name, value, thing_name));
CREATE INDEX reg_thing_attributes_thing ON reg_thing_attributes (thing_name);`;

export const REGISTRY_MIGRATIONS: Migration[] = [
  // (v3 below adds the change feed.)
  {
    version: 1,
    description: 'registry tables',
    sqlite: DDL('INTEGER', 'TEXT'),
    postgres: DDL('BIGINT', 'TEXT COLLATE "C"'),
  },
  {
    version: 2,
    description: 'thing attribute rows for ListThings filters',
    sqlite:
      ATTRIBUTES_DDL('TEXT') +
      '\nINSERT INTO reg_thing_attributes SELECT j.key, j.value, t.name FROM reg_things t, json_each(t.attributes) j;',
    postgres:
      ATTRIBUTES_DDL('TEXT COLLATE "C"') +
      '\nINSERT INTO reg_thing_attributes SELECT j.key, j.value, t.name FROM reg_things t, jsonb_each_text(t.attributes::jsonb) j;',
  },
  {
    version: 3,
    description: 'change feed for multi-node fleet index',
    sqlite:
      'CREATE TABLE reg_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL)',
    postgres:
      'CREATE TABLE reg_changes (seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, at BIGINT NOT NULL)',
  },
  {
    version: 4,
    description: 'drop the polled change feed (replaced by change events, src/events)',
    sqlite: 'DROP TABLE reg_changes',
    postgres: 'DROP TABLE reg_changes',
  },
];

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

const typeOf = (r: any): ThingTypeRecord => ({
  name: r.name,
  id: r.id,
  properties: JSON.parse(r.properties),
  deprecated: Boolean(Number(r.deprecated)),
  deprecationDate: r.deprecation_date == null ? null : Number(r.deprecation_date),
  createdAt: Number(r.created_at),
  tags: JSON.parse(r.tags),
});

const groupOf = (r: any): ThingGroupRecord => ({
  name: r.name,
  id: r.id,
  parentName: r.parent_name,
  description: r.description,
  attributes: JSON.parse(r.attributes),
  version: Number(r.version),
  createdAt: Number(r.created_at),
  dynamic: r.dynamic_query ? JSON.parse(r.dynamic_query) : null,
  tags: JSON.parse(r.tags),
});

const billingOf = (r: any): BillingGroupRecord => ({
  name: r.name,
  id: r.id,
  description: r.description,
  version: Number(r.version),
  createdAt: Number(r.created_at),
});

/** Case-sensitive prefix test, portable (SQLite's LIKE ignores ASCII case). */
const startsWith = (expr: string, param: string) =>
  `substr(${expr}, 1, length(CAST(${param} AS TEXT))) = ${param}`;

/**
 * Open the registry store over the platform database (runs the registry migrations).
 * @example const store = await createRegistryStore(db);
 */
export async function createRegistryStore(db: Database): Promise<RegistryStore> {
  await migrate(db, 'registry', REGISTRY_MIGRATIONS);
  /** One multi-row INSERT for a thing's attribute rows (at most 50), or null when it has none. */
  const attributesInsert = (name: string, attributes: Attributes): Statement | null => {
    const entries = Object.entries(attributes);
    if (entries.length === 0) return null;
    const params: unknown[] = [];
    const rows = entries.map(([k, v]) => {
      params.push(k, v, name);
      const n = params.length;
      return `($${n - 2}, $${n - 1}, $${n})`;
    });
    return {
      sql: `INSERT INTO reg_thing_attributes (attr_name, value, thing_name) VALUES ${rows.join(', ')}`,
      params,
    };
  };

  /**
   * Run statements in one transaction; the rest run only when the first changed a row. Returns the first
   * statement's change count. On SQLite this is one synchronous better-sqlite3 transaction, so no other
   * request's statement can interleave with it (an async transaction on the shared handle could).
   */
  const sqliteCache = new Map<
    string,
    { stmt: { run(...p: unknown[]): { changes: number } }; order: number[] }
  >();
  async function atomic(statements: Array<Statement | null>): Promise<number> {
    const list = statements.filter((x): x is Statement => x !== null);
    if (db.kind === 'sqlite') {
      const raw = db.raw;
      /** `$n` -> `?` with the parameter order (the store foundation's portable placeholders). */
      const run = (st: Statement) => {
        let entry = sqliteCache.get(st.sql);
        if (!entry) {
          const order: number[] = [];
          const text = st.sql.replace(/\$(\d+)/g, (_, n: string) => {
            order.push(Number(n) - 1);
            return '?';
          });
          entry = { stmt: raw.prepare(text), order };
          if (sqliteCache.size > 200) sqliteCache.clear();
          sqliteCache.set(st.sql, entry);
        }
        return entry.stmt.run(...entry.order.map((i) => st.params[i])).changes;
      };
      // Never nest inside another context's open (async) transaction on the shared handle: its rollback
      // would silently take this write with it. Wait for it to end, then run without yielding.
      while (raw.inTransaction) await new Promise((resolve) => setImmediate(resolve));
      return raw.transaction(() => {
        let first = 0;
        for (const [i, st] of list.entries()) {
          const changes = run(st);
          if (i === 0) {
            first = changes;
            if (changes === 0) break;
          }
        }
        return first;
      })();
    }
    return db.transaction(async (tx) => {
      let first = 0;
      for (const [i, st] of list.entries()) {
        const changes = await tx.run(st.sql, st.params);
        if (i === 0) {
          first = changes;
          if (changes === 0) break;
        }
      }
      return first;
    });
  }

  /** A single write, through `atomic` so it never lands inside another context's SQLite transaction. */
  const write = (sql: string, params: unknown[]) => atomic([{ sql, params }]);
  const insertOrIgnore = async (_db: unknown, sql: string, params: unknown[]) =>
    (await write(`${sql} ON CONFLICT DO NOTHING`, params)) > 0;

  const base: RegistryStore = {
    async getThing(name) {
      const rows = await db.query<ThingRow>('SELECT * FROM reg_things WHERE name = $1', [name]);
      return rows[0] ? thingOf(rows[0]) : undefined;
    },
    async insertThing(t) {
      return (
        (await atomic([
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
          attributesInsert(t.name, t.attributes),
        ])) > 0
      );
    },
    async updateThing(t, ifVersion) {
      return (
        (await atomic([
          {
            sql: 'UPDATE reg_things SET type_name = $1, attributes = $2, version = $3, billing_group = $4 WHERE name = $5 AND version = $6',
            params: [t.typeName, JSON.stringify(t.attributes), t.version, t.billingGroup, t.name, ifVersion],
          },
          { sql: 'DELETE FROM reg_thing_attributes WHERE thing_name = $1', params: [t.name] },
          attributesInsert(t.name, t.attributes),
        ])) > 0
      );
    },
    async deleteThing(name, ifVersion) {
      return (
        (await atomic([
          ifVersion === undefined
            ? { sql: 'DELETE FROM reg_things WHERE name = $1', params: [name] }
            : { sql: 'DELETE FROM reg_things WHERE name = $1 AND version = $2', params: [name, ifVersion] },
          { sql: 'DELETE FROM reg_group_members WHERE thing_name = $1', params: [name] },
          { sql: 'DELETE FROM reg_thing_principals WHERE thing_name = $1', params: [name] },
          { sql: 'DELETE FROM reg_thing_attributes WHERE thing_name = $1', params: [name] },
        ])) > 0
      );
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
      await write(
        'UPDATE reg_thing_types SET properties = $1, deprecated = $2, deprecation_date = $3 WHERE name = $4',
        [JSON.stringify(t.properties), t.deprecated ? 1 : 0, t.deprecationDate, t.name],
      );
    },
    async deleteType(name) {
      return (await write('DELETE FROM reg_thing_types WHERE name = $1', [name])) > 0;
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

    async getGroup(name) {
      const rows = await db.query('SELECT * FROM reg_thing_groups WHERE name = $1', [name]);
      return rows[0] ? groupOf(rows[0]) : undefined;
    },
    insertGroup(g) {
      return insertOrIgnore(
        db,
        'INSERT INTO reg_thing_groups (name, id, parent_name, description, attributes, version, created_at, dynamic_query, tags) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [
          g.name,
          g.id,
          g.parentName,
          g.description,
          JSON.stringify(g.attributes),
          g.version,
          g.createdAt,
          g.dynamic ? JSON.stringify(g.dynamic) : null,
          JSON.stringify(g.tags),
        ],
      );
    },
    async updateGroup(g, ifVersion) {
      return (
        (await write(
          'UPDATE reg_thing_groups SET description = $1, attributes = $2, version = $3, dynamic_query = $4 WHERE name = $5 AND version = $6',
          [
            g.description,
            JSON.stringify(g.attributes),
            g.version,
            g.dynamic ? JSON.stringify(g.dynamic) : null,
            g.name,
            ifVersion,
          ],
        )) > 0
      );
    },
    async deleteGroup(name) {
      // Memberships go too; the group row is checked first so a missing group changes nothing.
      return (
        (await atomic([
          { sql: 'DELETE FROM reg_thing_groups WHERE name = $1', params: [name] },
          { sql: 'DELETE FROM reg_group_members WHERE group_name = $1', params: [name] },
        ])) > 0
      );
    },
    async listGroups(p) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (cond: (n: string) => string, v: unknown) => {
        params.push(v);
        where.push(cond(`$${params.length}`));
      };
      if (p.after !== undefined) add((n) => `name > ${n}`, p.after);
      if (p.parent !== undefined) add((n) => `parent_name = ${n}`, p.parent);
      if (p.namePrefix !== undefined) add((n) => startsWith('name', n), p.namePrefix);
      if (p.names !== undefined) {
        if (p.names.length === 0) return [];
        const marks = p.names.map((name) => {
          params.push(name);
          return `$${params.length}`;
        });
        where.push(`name IN (${marks.join(', ')})`);
      }
      params.push(p.limit);
      const rows = await db.query(
        `SELECT * FROM reg_thing_groups ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name LIMIT $${params.length}`,
        params,
      );
      return rows.map(groupOf);
    },
    async allGroups() {
      return (await db.query('SELECT * FROM reg_thing_groups ORDER BY name')).map(groupOf);
    },
    async countChildren(parent) {
      const rows = await db.query<{ n: number | string }>(
        'SELECT COUNT(*) AS n FROM reg_thing_groups WHERE parent_name = $1',
        [parent],
      );
      return Number(rows[0]?.n ?? 0);
    },

    addMember(group, thing) {
      return insertOrIgnore(db, 'INSERT INTO reg_group_members (group_name, thing_name) VALUES ($1, $2)', [
        group,
        thing,
      ]);
    },
    async removeMember(group, thing) {
      return (
        (await write('DELETE FROM reg_group_members WHERE group_name = $1 AND thing_name = $2', [
          group,
          thing,
        ])) > 0
      );
    },
    async groupsOfThing(thing) {
      const rows = await db.query<{ group_name: string }>(
        'SELECT group_name FROM reg_group_members WHERE thing_name = $1 ORDER BY group_name',
        [thing],
      );
      return rows.map((r) => r.group_name);
    },
    async thingsInGroups(groups, p) {
      if (groups.length === 0) return [];
      const params: unknown[] = [p.after ?? ''];
      const marks = groups.map((g) => {
        params.push(g);
        return `$${params.length}`;
      });
      params.push(p.limit);
      const rows = await db.query<{ thing_name: string }>(
        `SELECT DISTINCT thing_name FROM reg_group_members WHERE thing_name > $1 AND group_name IN (${marks.join(', ')}) ` +
          `ORDER BY thing_name LIMIT $${params.length}`,
        params,
      );
      return rows.map((r) => r.thing_name);
    },
    async allMemberships() {
      const rows = await db.query<{ group_name: string; thing_name: string }>(
        'SELECT group_name, thing_name FROM reg_group_members',
      );
      return rows.map((r) => ({ group: r.group_name, thing: r.thing_name }));
    },

    async attachPrincipal(thing, principal, type) {
      await write(
        'INSERT INTO reg_thing_principals (thing_name, principal, principal_type) VALUES ($1, $2, $3) ' +
          'ON CONFLICT (thing_name, principal) DO UPDATE SET principal_type = excluded.principal_type',
        [thing, principal, type],
      );
    },
    async detachPrincipal(thing, principal) {
      return (
        (await write('DELETE FROM reg_thing_principals WHERE thing_name = $1 AND principal = $2', [
          thing,
          principal,
        ])) > 0
      );
    },
    async principalsOfThing(thing, p) {
      const rows = await db.query<{ principal: string; principal_type: string }>(
        'SELECT principal, principal_type FROM reg_thing_principals WHERE thing_name = $1 AND principal > $2 ORDER BY principal LIMIT $3',
        [thing, p.after ?? '', p.limit],
      );
      return rows.map((r) => ({ principal: r.principal, type: r.principal_type }));
    },
    async thingsOfPrincipal(principal, p) {
      const rows = await db.query<{ thing_name: string; principal_type: string }>(
        'SELECT thing_name, principal_type FROM reg_thing_principals WHERE principal = $1 AND thing_name > $2 ORDER BY thing_name LIMIT $3',
        [principal, p.after ?? '', p.limit],
      );
      return rows.map((r) => ({ thing: r.thing_name, type: r.principal_type }));
    },

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
        (await write(
          'UPDATE reg_billing_groups SET description = $1, version = $2 WHERE name = $3 AND version = $4',
          [b.description, b.version, b.name, ifVersion],
        )) > 0
      );
    },
    async deleteBillingGroup(name) {
      return (
        (await atomic([
          { sql: 'DELETE FROM reg_billing_groups WHERE name = $1', params: [name] },
          { sql: 'UPDATE reg_things SET billing_group = NULL WHERE billing_group = $1', params: [name] },
        ])) > 0
      );
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

    async getSetting(key) {
      const rows = await db.query<{ value: string }>('SELECT value FROM reg_settings WHERE key = $1', [key]);
      return rows[0]?.value;
    },
    async setSetting(key, value) {
      await write(
        'INSERT INTO reg_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      );
    },
  };
  return base;
}
