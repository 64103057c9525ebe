/**
 * The provisioning templates store: templates and their versions on the platform database (SQLite or
 * PostgreSQL: one portable implementation over `Database`, the contract suite templates-store.test.ts runs
 * on both).
 *
 * Contract:
 * - A template always has at least one version and its default version exists: `insert` writes the
 *   template and version 1 in one batch; `deleteVersion` refuses the default; `update` sets a default only
 *   to a version that exists, checked in the same transaction (on PostgreSQL the template row is locked
 *   FOR UPDATE, so two processes cannot interleave a default change and a version delete).
 * - Version ids grow by one per version created and are never reused within a template's life, even after a
 *   delete (AWS's behaviour); `addVersion` counts the versions and refuses past `maxVersions` atomically.
 * - Version bodies never change once written, so `getTemplate` caches their parse by (template, creation
 *   time, version id); each call still reads the template row, so every process sees another's update at once.
 * Times are epoch ms.
 */
import type { Database, Migration } from '../store/index.js';
import { migrate } from '../store/index.js';
import { parseTemplate, type ParsedTemplate } from './template.js';

export type TemplateType = 'FLEET_PROVISIONING' | 'JITP';

export interface PreProvisioningHook {
  readonly targetArn: string;
  readonly payloadVersion?: string;
}

export interface TemplateRecord {
  readonly templateName: string;
  readonly type: TemplateType;
  readonly description: string | null;
  readonly enabled: boolean;
  readonly provisioningRoleArn: string;
  readonly preProvisioningHook: PreProvisioningHook | null;
  readonly defaultVersionId: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TemplateVersionRecord {
  readonly templateName: string;
  readonly versionId: number;
  readonly body: string;
  readonly createdAt: number;
}

/** What UpdateProvisioningTemplate may change (absent: unchanged; hook null: removed). */
export interface TemplatePatch {
  readonly description?: string;
  readonly enabled?: boolean;
  readonly defaultVersionId?: number;
  readonly provisioningRoleArn?: string;
  readonly preProvisioningHook?: PreProvisioningHook | null;
}

/** A template as the provisioning flows read it: its default version, parsed (pipeline.ts's StoredTemplate). */
export interface StoredTemplate {
  readonly name: string;
  readonly arn: string;
  readonly type: TemplateType;
  readonly enabled: boolean;
  /** The default version's body. */
  readonly body: string;
  readonly parsed: ParsedTemplate;
  readonly preProvisioningHook?: PreProvisioningHook;
  readonly provisioningRoleArn: string;
}

/** The read side the provisioning flows use (pipeline.ts's TemplateSource). */
export interface TemplateReader {
  /** The template with its default version's body and parse; undefined when there is none by that name. */
  getTemplate(name: string): Promise<StoredTemplate | undefined>;
}

export interface TemplatesStore extends TemplateReader {
  /** Insert a template with its first version (id 1, the default). False when the name exists. */
  insert(template: TemplateRecord, body: string): Promise<boolean>;
  get(name: string): Promise<TemplateRecord | null>;
  /** Templates in name order after `after` (exclusive), at most `limit`. */
  list(filter: { after?: string; limit: number }): Promise<TemplateRecord[]>;
  /**
   * Apply a patch at `now`. 'not_found': no template; 'no_version': defaultVersionId names no version.
   * Returns the template as written.
   */
  update(
    name: string,
    patch: TemplatePatch,
    now: number,
  ): Promise<TemplateRecord | 'not_found' | 'no_version'>;
  /** Remove a template and all its versions. False when there was none. */
  delete(name: string): Promise<boolean>;
  /**
   * Add a version (the next id). 'not_found': no template; 'limit': it already has `maxVersions`.
   */
  addVersion(
    name: string,
    body: string,
    options: { setAsDefault: boolean; now: number; maxVersions: number },
  ): Promise<{ versionId: number; isDefault: boolean } | 'not_found' | 'limit'>;
  getVersion(name: string, versionId: number): Promise<TemplateVersionRecord | null>;
  /** Versions in id order after `after` (exclusive), at most `limit`. */
  listVersions(name: string, filter: { after?: number; limit: number }): Promise<TemplateVersionRecord[]>;
  /** 'default': the version is the default one and is kept. */
  deleteVersion(name: string, versionId: number): Promise<'deleted' | 'not_found' | 'default'>;
}

const tables = (big: string) => `
  CREATE TABLE provisioning_templates (
    template_name TEXT PRIMARY KEY, template_type TEXT NOT NULL, description TEXT, enabled INTEGER NOT NULL,
    provisioning_role_arn TEXT NOT NULL, pre_provisioning_hook TEXT, default_version_id INTEGER NOT NULL,
    next_version_id INTEGER NOT NULL, created_at ${big} NOT NULL, updated_at ${big} NOT NULL);
  CREATE TABLE provisioning_template_versions (
    template_name TEXT NOT NULL, version_id INTEGER NOT NULL, body TEXT NOT NULL, created_at ${big} NOT NULL,
    PRIMARY KEY (template_name, version_id));
`;

export const PROVISIONING_TEMPLATE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'provisioning templates and their versions',
    sqlite: tables('INTEGER'),
    postgres: tables('BIGINT'),
  },
];

type Row = Record<string, unknown>;

function templateFromRow(r: Row): TemplateRecord {
  return {
    templateName: String(r.template_name),
    type: r.template_type as TemplateType,
    description: typeof r.description === 'string' ? r.description : null,
    enabled: Number(r.enabled) === 1,
    provisioningRoleArn: String(r.provisioning_role_arn),
    preProvisioningHook:
      typeof r.pre_provisioning_hook === 'string'
        ? (JSON.parse(r.pre_provisioning_hook) as PreProvisioningHook)
        : null,
    defaultVersionId: Number(r.default_version_id),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function versionFromRow(r: Row): TemplateVersionRecord {
  return {
    templateName: String(r.template_name),
    versionId: Number(r.version_id),
    body: String(r.body),
    createdAt: Number(r.created_at),
  };
}

const COLUMNS =
  'template_name, template_type, description, enabled, provisioning_role_arn, pre_provisioning_hook, ' +
  'default_version_id, created_at, updated_at';

/** Parsed default versions kept in memory (bodies are immutable; see the contract). */
const PARSE_CACHE_SIZE = 1000;

/**
 * Open (and migrate) the templates store.
 * @example const store = await createTemplatesStore(db, { region, accountId });
 */
export async function createTemplatesStore(
  db: Database,
  scope: { readonly region: string; readonly accountId: string },
): Promise<TemplatesStore> {
  await migrate(db, 'provisioning-templates', PROVISIONING_TEMPLATE_MIGRATIONS);
  const forUpdate = db.kind === 'postgres' ? ' FOR UPDATE' : '';
  const parsed = new Map<string, ParsedTemplate>();
  const arn = (name: string) => `arn:aws:iot:${scope.region}:${scope.accountId}:provisioningtemplate/${name}`;

  function parseCached(key: string, body: string): ParsedTemplate | undefined {
    const hit = parsed.get(key);
    if (hit) return hit;
    const r = parseTemplate(body);
    if (!r.ok) return undefined; // bodies are checked before they are stored; a bad one is not served
    if (parsed.size >= PARSE_CACHE_SIZE) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, r.template);
    return r.template;
  }

  return {
    async insert(t, body) {
      const [inserted] = await db.batch(
        [
          {
            sql:
              `INSERT INTO provisioning_templates (${COLUMNS}, next_version_id) ` +
              'VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, 2) ON CONFLICT (template_name) DO NOTHING',
            params: [
              t.templateName,
              t.type,
              t.description,
              t.enabled ? 1 : 0,
              t.provisioningRoleArn,
              t.preProvisioningHook ? JSON.stringify(t.preProvisioningHook) : null,
              t.createdAt,
              t.updatedAt,
            ],
          },
          {
            // A version row left by nothing (the template was deleted with its versions) cannot exist;
            // ON CONFLICT keeps a racing insert from failing the batch after the guard.
            sql:
              'INSERT INTO provisioning_template_versions (template_name, version_id, body, created_at) ' +
              'VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING',
            params: [t.templateName, body, t.createdAt],
          },
        ],
        { guard: true },
      );
      return inserted === 1;
    },

    async get(name) {
      const rows = await db.query(`SELECT ${COLUMNS} FROM provisioning_templates WHERE template_name = $1`, [
        name,
      ]);
      return rows[0] ? templateFromRow(rows[0]) : null;
    },

    async list({ after, limit }) {
      const rows = await db.query(
        `SELECT ${COLUMNS} FROM provisioning_templates WHERE template_name > $1 ORDER BY template_name LIMIT $2`,
        [after ?? '', limit],
      );
      return rows.map(templateFromRow);
    },

    async update(name, patch, now) {
      return db.transaction(async (tx) => {
        const rows = await tx.query(
          `SELECT ${COLUMNS} FROM provisioning_templates WHERE template_name = $1${forUpdate}`,
          [name],
        );
        if (!rows[0]) return 'not_found' as const;
        const current = templateFromRow(rows[0]);
        if (patch.defaultVersionId !== undefined) {
          const v = await tx.query(
            'SELECT 1 AS one FROM provisioning_template_versions WHERE template_name = $1 AND version_id = $2',
            [name, patch.defaultVersionId],
          );
          if (v.length === 0) return 'no_version' as const;
        }
        const next: TemplateRecord = {
          ...current,
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
          ...(patch.defaultVersionId !== undefined ? { defaultVersionId: patch.defaultVersionId } : {}),
          ...(patch.provisioningRoleArn !== undefined
            ? { provisioningRoleArn: patch.provisioningRoleArn }
            : {}),
          ...(patch.preProvisioningHook !== undefined
            ? { preProvisioningHook: patch.preProvisioningHook }
            : {}),
          updatedAt: now,
        };
        await tx.run(
          'UPDATE provisioning_templates SET description = $2, enabled = $3, default_version_id = $4, ' +
            'provisioning_role_arn = $5, pre_provisioning_hook = $6, updated_at = $7 WHERE template_name = $1',
          [
            name,
            next.description,
            next.enabled ? 1 : 0,
            next.defaultVersionId,
            next.provisioningRoleArn,
            next.preProvisioningHook ? JSON.stringify(next.preProvisioningHook) : null,
            now,
          ],
        );
        return next;
      });
    },

    async delete(name) {
      const [, deleted] = await db.batch([
        { sql: 'DELETE FROM provisioning_template_versions WHERE template_name = $1', params: [name] },
        { sql: 'DELETE FROM provisioning_templates WHERE template_name = $1', params: [name] },
      ]);
      return (deleted ?? 0) > 0;
    },

    async addVersion(name, body, { setAsDefault, now, maxVersions }) {
      return db.transaction(async (tx) => {
        const rows = await tx.query<{ next_version_id: unknown }>(
          `SELECT next_version_id FROM provisioning_templates WHERE template_name = $1${forUpdate}`,
          [name],
        );
        if (!rows[0]) return 'not_found' as const;
        const [count] = await tx.query<{ n: unknown }>(
          'SELECT COUNT(*) AS n FROM provisioning_template_versions WHERE template_name = $1',
          [name],
        );
        if (Number(count?.n ?? 0) >= maxVersions) return 'limit' as const;
        const versionId = Number(rows[0].next_version_id);
        await tx.run(
          'INSERT INTO provisioning_template_versions (template_name, version_id, body, created_at) VALUES ($1, $2, $3, $4)',
          [name, versionId, body, now],
        );
        await tx.run(
          'UPDATE provisioning_templates SET next_version_id = $2, updated_at = $3' +
            (setAsDefault ? ', default_version_id = $4' : '') +
            ' WHERE template_name = $1',
          setAsDefault ? [name, versionId + 1, now, versionId] : [name, versionId + 1, now],
        );
        return { versionId, isDefault: setAsDefault };
      });
    },

    async getVersion(name, versionId) {
      const rows = await db.query(
        'SELECT template_name, version_id, body, created_at FROM provisioning_template_versions ' +
          'WHERE template_name = $1 AND version_id = $2',
        [name, versionId],
      );
      return rows[0] ? versionFromRow(rows[0]) : null;
    },

    async listVersions(name, { after, limit }) {
      const rows = await db.query(
        'SELECT template_name, version_id, body, created_at FROM provisioning_template_versions ' +
          'WHERE template_name = $1 AND version_id > $2 ORDER BY version_id LIMIT $3',
        [name, after ?? 0, limit],
      );
      return rows.map(versionFromRow);
    },

    async deleteVersion(name, versionId) {
      return db.transaction(async (tx) => {
        const rows = await tx.query<{ default_version_id: unknown }>(
          `SELECT default_version_id FROM provisioning_templates WHERE template_name = $1${forUpdate}`,
          [name],
        );
        if (!rows[0]) return 'not_found' as const;
        if (Number(rows[0].default_version_id) === versionId) return 'default' as const;
        const n = await tx.run(
          'DELETE FROM provisioning_template_versions WHERE template_name = $1 AND version_id = $2',
          [name, versionId],
        );
        return n > 0 ? ('deleted' as const) : ('not_found' as const);
      });
    },

    async getTemplate(name) {
      const rows = await db.query(
        `SELECT t.template_name, t.template_type, t.description, t.enabled, t.provisioning_role_arn,
                t.pre_provisioning_hook, t.default_version_id, t.created_at, t.updated_at, v.body
           FROM provisioning_templates t
           JOIN provisioning_template_versions v
             ON v.template_name = t.template_name AND v.version_id = t.default_version_id
          WHERE t.template_name = $1`,
        [name],
      );
      const row = rows[0];
      if (!row) return undefined;
      const t = templateFromRow(row);
      const body = String(row.body);
      const template = parseCached(`${t.templateName}\u0000${t.createdAt}\u0000${t.defaultVersionId}`, body);
      if (!template) return undefined;
      return {
        name: t.templateName,
        arn: arn(t.templateName),
        type: t.type,
        enabled: t.enabled,
        body,
        parsed: template,
        provisioningRoleArn: t.provisioningRoleArn,
        ...(t.preProvisioningHook ? { preProvisioningHook: t.preProvisioningHook } : {}),
      };
    },
  };
}
