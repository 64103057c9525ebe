import { migrate, type Database, type Migration } from '../store/index.js';
import { billingGroupStore, type BillingGroupStore } from './billing-groups-store.js';
import { groupStore, type GroupStore } from './groups-store.js';
import { principalStore, type PrincipalStore } from './principals-store.js';
import { thingTypeStore, type ThingTypeStore } from './thing-types-store.js';
import { thingStore, type ThingStore } from './things-store.js';

/**
 * The registry's storage interface, one part per resource (`things-store.ts`, `thing-types-store.ts`,
 * `groups-store.ts` for static and dynamic groups and memberships, `principals-store.ts`,
 * `billing-groups-store.ts`), and its schema. One SQL implementation serves both engines of the store
 * foundation (SQLite and PostgreSQL) through portable `$n` SQL; multi-statement writes are the foundation's
 * `db.batch`; the dialect differences live in the migrations (BIGINT, COLLATE "C", JSON backfill). The
 * contract suite (test/integration/registry-contract.test.ts) runs against both.
 *
 * Contracts: names are primary keys (case-sensitive); list methods return rows in ascending name order after
 * the keyset cursor `after`; conditional updates return false when the stored version differs.
 */

export type { Attributes, ThingRecord } from './things-store.js';
export type { ThingTypeRecord } from './thing-types-store.js';
export type { DynamicQuery, ThingGroupRecord } from './groups-store.js';
export type { BillingGroupRecord } from './billing-groups-store.js';
export type { Page } from './store-sql.js';

/** Account-level registry settings (`reg_settings`: the registration code, event configurations). */
export interface SettingStore {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

export type RegistryStore = ThingStore &
  ThingTypeStore &
  GroupStore &
  PrincipalStore &
  BillingGroupStore &
  SettingStore;

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

/**
 * Open the registry store over the platform database (runs the registry migrations).
 * @example const store = await createRegistryStore(db);
 */
export async function createRegistryStore(db: Database): Promise<RegistryStore> {
  await migrate(db, 'registry', REGISTRY_MIGRATIONS);
  return {
    ...thingStore(db),
    ...thingTypeStore(db),
    ...groupStore(db),
    ...principalStore(db),
    ...billingGroupStore(db),
    async getSetting(key) {
      const rows = await db.query<{ value: string }>('SELECT value FROM reg_settings WHERE key = $1', [key]);
      return rows[0]?.value;
    },
    async setSetting(key, value) {
      await db.run(
        'INSERT INTO reg_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      );
    },
  };
}
