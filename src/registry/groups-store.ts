import type { Database } from '../store/index.js';
import { insertOrIgnore, startsWith, type Page } from './store-sql.js';

/**
 * Thing groups, static and dynamic (`reg_thing_groups`; a dynamic group is a row with a query), and static
 * memberships (`reg_group_members`).
 */

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
  readonly attributes: Record<string, string>;
  readonly version: number;
  readonly createdAt: number;
  readonly dynamic: DynamicQuery | null;
  readonly tags: ReadonlyArray<{ Key: string; Value?: string }>;
}

export interface GroupStore {
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
}

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

export function groupStore(db: Database): GroupStore {
  return {
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
        (await db.run(
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
      // Memberships go too; the group row is the guard, so a missing group changes nothing.
      const [deleted] = await db.batch(
        [
          { sql: 'DELETE FROM reg_thing_groups WHERE name = $1', params: [name] },
          { sql: 'DELETE FROM reg_group_members WHERE group_name = $1', params: [name] },
        ],
        { guard: true },
      );
      return (deleted ?? 0) > 0;
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
        (await db.run('DELETE FROM reg_group_members WHERE group_name = $1 AND thing_name = $2', [
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
  };
}
