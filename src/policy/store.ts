import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Storage of named, versioned policies and their attachments to targets (certificate ARNs, thing-group
 * ARNs, `anonymous`). Portable SQL over the Database API; the contract test runs it on SQLite and PostgreSQL.
 */

export interface PolicyRecord {
  readonly name: string;
  readonly defaultVersionId: number;
  /** Next version number to hand out (versions are never reused). */
  readonly nextVersionId: number;
  readonly createdAt: number;
  readonly lastModifiedAt: number;
  readonly generationId: string;
}

export interface PolicyVersionRecord {
  readonly name: string;
  readonly versionId: number;
  readonly document: string;
  readonly createdAt: number;
}

export interface PolicyStore {
  all(): Promise<{
    policies: PolicyRecord[];
    versions: PolicyVersionRecord[];
    targets: Array<{ policy: string; target: string }>;
  }>;
  create(policy: PolicyRecord, version: PolicyVersionRecord): Promise<boolean>;
  addVersion(
    version: PolicyVersionRecord,
    policy: Pick<PolicyRecord, 'nextVersionId' | 'lastModifiedAt' | 'generationId'> & {
      defaultVersionId: number;
    },
  ): Promise<void>;
  setDefault(name: string, versionId: number, lastModifiedAt: number, generationId: string): Promise<void>;
  deleteVersion(name: string, versionId: number): Promise<void>;
  delete(name: string): Promise<void>;
  attach(policy: string, target: string, at: number): Promise<void>;
  detach(policy: string, target: string): Promise<boolean>;
  /** Change counter, bumped after every write (other nodes poll it to know when to reload). */
  version(): Promise<number>;
}

const DDL =
  'CREATE TABLE policies (name TEXT PRIMARY KEY, default_version_id INTEGER NOT NULL, next_version_id INTEGER NOT NULL, ' +
  'created_at BIGINT NOT NULL, last_modified_at BIGINT NOT NULL, generation_id TEXT NOT NULL);\n' +
  'CREATE TABLE policy_versions (name TEXT NOT NULL, version_id INTEGER NOT NULL, document TEXT NOT NULL, ' +
  'created_at BIGINT NOT NULL, PRIMARY KEY (name, version_id));\n' +
  'CREATE TABLE policy_targets (policy_name TEXT NOT NULL, target TEXT NOT NULL, created_at BIGINT NOT NULL, ' +
  'PRIMARY KEY (policy_name, target));\n' +
  'CREATE INDEX policy_targets_by_target ON policy_targets (target, policy_name);';

const META =
  'CREATE TABLE policy_meta (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);\n' +
  'INSERT INTO policy_meta (id, version) VALUES (1, 0);';

export const POLICY_MIGRATIONS: Migration[] = [
  { version: 1, description: 'policies, versions, targets', sqlite: DDL, postgres: DDL },
  { version: 2, description: 'change counter for multi-node reloads', sqlite: META, postgres: META },
];

type Row = Record<string, unknown>;

/** @example const store = await openPolicyStore(db); */
export async function openPolicyStore(db: Database): Promise<PolicyStore> {
  await migrate(db, 'policy', POLICY_MIGRATIONS);
  const base: Omit<PolicyStore, 'version'> = {
    async all() {
      const [p, v, t] = await Promise.all([
        db.query<Row>('SELECT * FROM policies ORDER BY name'),
        db.query<Row>('SELECT * FROM policy_versions ORDER BY name, version_id'),
        db.query<Row>('SELECT * FROM policy_targets ORDER BY created_at, policy_name'),
      ]);
      return {
        policies: p.map((r) => ({
          name: r.name as string,
          defaultVersionId: Number(r.default_version_id),
          nextVersionId: Number(r.next_version_id),
          createdAt: Number(r.created_at),
          lastModifiedAt: Number(r.last_modified_at),
          generationId: r.generation_id as string,
        })),
        versions: v.map((r) => ({
          name: r.name as string,
          versionId: Number(r.version_id),
          document: r.document as string,
          createdAt: Number(r.created_at),
        })),
        targets: t.map((r) => ({ policy: r.policy_name as string, target: r.target as string })),
      };
    },
    async create(policy, version) {
      return db.transaction(async (tx) => {
        const n = await tx.run(
          'INSERT INTO policies (name, default_version_id, next_version_id, created_at, last_modified_at, generation_id) ' +
            'VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING',
          [
            policy.name,
            policy.defaultVersionId,
            policy.nextVersionId,
            policy.createdAt,
            policy.lastModifiedAt,
            policy.generationId,
          ],
        );
        if (n === 0) return false;
        await tx.run(
          'INSERT INTO policy_versions (name, version_id, document, created_at) VALUES ($1, $2, $3, $4)',
          [version.name, version.versionId, version.document, version.createdAt],
        );
        return true;
      });
    },
    async addVersion(version, policy) {
      await db.transaction(async (tx) => {
        await tx.run(
          'INSERT INTO policy_versions (name, version_id, document, created_at) VALUES ($1, $2, $3, $4)',
          [version.name, version.versionId, version.document, version.createdAt],
        );
        await tx.run(
          'UPDATE policies SET next_version_id = $2, default_version_id = $3, last_modified_at = $4, generation_id = $5 WHERE name = $1',
          [
            version.name,
            policy.nextVersionId,
            policy.defaultVersionId,
            policy.lastModifiedAt,
            policy.generationId,
          ],
        );
      });
    },
    async setDefault(name, versionId, at, generationId) {
      await db.run(
        'UPDATE policies SET default_version_id = $2, last_modified_at = $3, generation_id = $4 WHERE name = $1',
        [name, versionId, at, generationId],
      );
    },
    async deleteVersion(name, versionId) {
      await db.run('DELETE FROM policy_versions WHERE name = $1 AND version_id = $2', [name, versionId]);
    },
    async delete(name) {
      await db.transaction(async (tx) => {
        await tx.run('DELETE FROM policy_versions WHERE name = $1', [name]);
        await tx.run('DELETE FROM policy_targets WHERE policy_name = $1', [name]);
        await tx.run('DELETE FROM policies WHERE name = $1', [name]);
      });
    },
    async attach(policy, target, at) {
      await db.run(
        'INSERT INTO policy_targets (policy_name, target, created_at) VALUES ($1, $2, $3) ON CONFLICT (policy_name, target) DO NOTHING',
        [policy, target, at],
      );
    },
    async detach(policy, target) {
      return (
        (await db.run('DELETE FROM policy_targets WHERE policy_name = $1 AND target = $2', [
          policy,
          target,
        ])) > 0
      );
    },
  };
  /** Every write bumps the change counter once it is done, so a node that sees the bump sees the write. */
  const bumped =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const result = await fn(...args);
      await db.run('UPDATE policy_meta SET version = version + 1 WHERE id = 1');
      return result;
    };
  return {
    all: base.all,
    create: bumped(base.create),
    addVersion: bumped(base.addVersion),
    setDefault: bumped(base.setDefault),
    deleteVersion: bumped(base.deleteVersion),
    delete: bumped(base.delete),
    attach: bumped(base.attach),
    detach: bumped(base.detach),
    async version() {
      const rows = await db.query<{ version: unknown }>('SELECT version FROM policy_meta WHERE id = 1');
      return Number(rows[0]?.version ?? 0);
    },
  };
}
