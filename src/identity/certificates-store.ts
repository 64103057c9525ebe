import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Storage of device and CA certificates and the account's registration code. One implementation over
 * the portable Database API (`$n` placeholders on SQLite and PostgreSQL); the contract test runs it on both.
 */

/** reference §3.10 CertificateStatus */
export type CertificateStatus =
  'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_TRANSFER' | 'REGISTER_INACTIVE' | 'PENDING_ACTIVATION';
export type CaStatus = 'ACTIVE' | 'INACTIVE';
export type CertificateMode = 'DEFAULT' | 'SNI_ONLY';

export interface CertificateRecord {
  readonly certificateId: string;
  readonly certificatePem: string;
  /** Id of the registered CA that issued it; the platform CA's id for platform-issued ones; null without CA. */
  readonly caCertificateId: string | null;
  readonly status: CertificateStatus;
  readonly mode: CertificateMode;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly lastModifiedAt: number;
  readonly customerVersion: number;
  readonly generationId: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface CaRecord {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly status: CaStatus;
  readonly autoRegistrationStatus: 'ENABLE' | 'DISABLE';
  readonly registrationConfig: Record<string, unknown> | null;
  readonly createdAt: number;
  readonly lastModifiedAt: number;
  readonly customerVersion: number;
  readonly generationId: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface Page<T> {
  readonly items: T[];
  /** Opaque marker for the next page; absent on the last page. */
  readonly nextMarker?: string | undefined;
}

export interface ListOptions {
  readonly pageSize?: number | undefined;
  readonly marker?: string | undefined;
  /** Oldest first when true; newest first by default (isAscendingOrder=false). */
  readonly ascending?: boolean | undefined;
  /** Only certificates issued by this CA (ListCertificatesByCA). */
  readonly caCertificateId?: string | undefined;
}

export interface CertificateStore {
  insert(record: CertificateRecord): Promise<boolean>;
  get(certificateId: string): Promise<CertificateRecord | undefined>;
  list(options?: ListOptions): Promise<Page<CertificateRecord>>;
  update(
    certificateId: string,
    change: { status: CertificateStatus; lastModifiedAt: number; generationId: string },
  ): Promise<boolean>;
  delete(certificateId: string): Promise<boolean>;

  insertCa(record: CaRecord): Promise<boolean>;
  getCa(certificateId: string): Promise<CaRecord | undefined>;
  listCas(options?: ListOptions): Promise<Page<CaRecord>>;
  updateCa(
    certificateId: string,
    change: Partial<Pick<CaRecord, 'status' | 'autoRegistrationStatus' | 'registrationConfig'>> & {
      lastModifiedAt: number;
      generationId: string;
    },
  ): Promise<boolean>;
  deleteCa(certificateId: string): Promise<boolean>;
  /** Number of certificates issued by a CA (DeleteCACertificate is refused while any remain). */
  countByCa(caCertificateId: string): Promise<number>;

  getSetting(key: string): Promise<string | undefined>;
  /** Insert unless present; returns the value stored (the existing one when there was one). */
  putSettingOnce(key: string, value: string): Promise<string>;
  deleteSetting(key: string): Promise<void>;
}

const CERT_COLUMNS =
  'certificate_id TEXT PRIMARY KEY, certificate_pem TEXT NOT NULL, ca_certificate_id TEXT, status TEXT NOT NULL, ' +
  'mode TEXT NOT NULL, created_at BIGINT NOT NULL, last_modified_at BIGINT NOT NULL, customer_version INTEGER NOT NULL, ' +
  'generation_id TEXT NOT NULL, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL';
const CA_COLUMNS =
  'certificate_id TEXT PRIMARY KEY, certificate_pem TEXT NOT NULL, status TEXT NOT NULL, auto_registration TEXT NOT NULL, ' +
  'registration_config TEXT, created_at BIGINT NOT NULL, last_modified_at BIGINT NOT NULL, ' +
  'customer_version INTEGER NOT NULL, generation_id TEXT NOT NULL, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL';
const DDL =
  `CREATE TABLE certificates (${CERT_COLUMNS});\n` +
  'CREATE INDEX certificates_by_ca ON certificates (ca_certificate_id, created_at);\n' +
  'CREATE INDEX certificates_by_created ON certificates (created_at, certificate_id);\n' +
  `CREATE TABLE ca_certificates (${CA_COLUMNS});\n` +
  'CREATE TABLE identity_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);';

export const CERTIFICATE_MIGRATIONS: Migration[] = [
  { version: 1, description: 'certificates, CA certificates, registration code', sqlite: DDL, postgres: DDL },
];

type Row = Record<string, unknown>;
const num = (v: unknown) => Number(v);

function certFromRow(r: Row): CertificateRecord {
  return {
    certificateId: String(r.certificate_id),
    certificatePem: String(r.certificate_pem),
    caCertificateId: r.ca_certificate_id == null ? null : (r.ca_certificate_id as string),
    status: r.status as CertificateStatus,
    mode: r.mode as CertificateMode,
    createdAt: num(r.created_at),
    lastModifiedAt: num(r.last_modified_at),
    customerVersion: num(r.customer_version),
    generationId: String(r.generation_id),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
  };
}

function caFromRow(r: Row): CaRecord {
  return {
    certificateId: String(r.certificate_id),
    certificatePem: String(r.certificate_pem),
    status: r.status as CaStatus,
    autoRegistrationStatus: r.auto_registration as 'ENABLE' | 'DISABLE',
    registrationConfig: r.registration_config
      ? (JSON.parse(r.registration_config as string) as Record<string, unknown>)
      : null,
    createdAt: num(r.created_at),
    lastModifiedAt: num(r.last_modified_at),
    customerVersion: num(r.customer_version),
    generationId: String(r.generation_id),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
  };
}

/** Markers encode the (created_at, id) keyset position: base64, as the model's marker pattern wants. */
function encodeMarker(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`).toString('base64');
}
function decodeMarker(marker: string | undefined): { createdAt: number; id: string } | null {
  if (!marker) return null;
  const [t, id] = Buffer.from(marker, 'base64').toString().split(':');
  if (!t || !id || !Number.isFinite(Number(t))) return null;
  return { createdAt: Number(t), id };
}

async function page<T extends { createdAt: number; certificateId: string }>(
  db: Database,
  table: string,
  from: (r: Row) => T,
  options: ListOptions,
): Promise<Page<T>> {
  const size = Math.min(Math.max(options.pageSize ?? 250, 1), 250);
  const asc = options.ascending === true ? 'ASC' : 'DESC';
  const cmp = asc === 'ASC' ? '>' : '<';
  const where: string[] = [];
  const params: unknown[] = [];
  if (options.caCertificateId !== undefined) {
    params.push(options.caCertificateId);
    where.push(`ca_certificate_id = $${params.length}`);
  }
  const m = decodeMarker(options.marker);
  if (m) {
    params.push(m.createdAt, m.id);
    where.push(
      `(created_at ${cmp} $${params.length - 1} OR (created_at = $${params.length - 1} AND certificate_id ${cmp} $${params.length}))`,
    );
  }
  params.push(size + 1);
  const rows = await db.query<Row>(
    `SELECT * FROM ${table}${where.length ? ' WHERE ' + where.join(' AND ') : ''} ` +
      `ORDER BY created_at ${asc}, certificate_id ${asc} LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, size).map(from);
  const last = items[items.length - 1];
  return {
    items,
    nextMarker: rows.length > size && last ? encodeMarker(last.createdAt, last.certificateId) : undefined,
  };
}

/**
 * Open the certificate store, running its migrations (context `certificates`).
 * @example const store = await openCertificateStore(db);
 */
export async function openCertificateStore(db: Database): Promise<CertificateStore> {
  await migrate(db, 'certificates', CERTIFICATE_MIGRATIONS);
  const store: CertificateStore = {
    async insert(c) {
      const n = await db.run(
        'INSERT INTO certificates (certificate_id, certificate_pem, ca_certificate_id, status, mode, created_at, ' +
          'last_modified_at, customer_version, generation_id, not_before, not_after) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (certificate_id) DO NOTHING',
        [
          c.certificateId,
          c.certificatePem,
          c.caCertificateId,
          c.status,
          c.mode,
          c.createdAt,
          c.lastModifiedAt,
          c.customerVersion,
          c.generationId,
          c.notBefore,
          c.notAfter,
        ],
      );
      return n > 0;
    },
    async get(id) {
      const rows = await db.query<Row>('SELECT * FROM certificates WHERE certificate_id = $1', [id]);
      return rows[0] ? certFromRow(rows[0]) : undefined;
    },
    list: (options = {}) => page(db, 'certificates', certFromRow, options),
    async update(id, change) {
      const n = await db.run(
        'UPDATE certificates SET status = $2, last_modified_at = $3, generation_id = $4, ' +
          'customer_version = customer_version + 1 WHERE certificate_id = $1',
        [id, change.status, change.lastModifiedAt, change.generationId],
      );
      return n > 0;
    },
    async delete(id) {
      return (await db.run('DELETE FROM certificates WHERE certificate_id = $1', [id])) > 0;
    },

    async insertCa(c) {
      const n = await db.run(
        'INSERT INTO ca_certificates (certificate_id, certificate_pem, status, auto_registration, registration_config, ' +
          'created_at, last_modified_at, customer_version, generation_id, not_before, not_after) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (certificate_id) DO NOTHING',
        [
          c.certificateId,
          c.certificatePem,
          c.status,
          c.autoRegistrationStatus,
          c.registrationConfig ? JSON.stringify(c.registrationConfig) : null,
          c.createdAt,
          c.lastModifiedAt,
          c.customerVersion,
          c.generationId,
          c.notBefore,
          c.notAfter,
        ],
      );
      return n > 0;
    },
    async getCa(id) {
      const rows = await db.query<Row>('SELECT * FROM ca_certificates WHERE certificate_id = $1', [id]);
      return rows[0] ? caFromRow(rows[0]) : undefined;
    },
    listCas: (options = {}) =>
      page(db, 'ca_certificates', caFromRow, { ...options, caCertificateId: undefined }),
    async updateCa(id, change) {
      const current = await store.getCa(id);
      if (!current) return false;
      const n = await db.run(
        'UPDATE ca_certificates SET status = $2, auto_registration = $3, registration_config = $4, ' +
          'last_modified_at = $5, generation_id = $6, customer_version = customer_version + 1 WHERE certificate_id = $1',
        [
          id,
          change.status ?? current.status,
          change.autoRegistrationStatus ?? current.autoRegistrationStatus,
          change.registrationConfig !== undefined
            ? change.registrationConfig
              ? JSON.stringify(change.registrationConfig)
              : null
            : current.registrationConfig
              ? JSON.stringify(current.registrationConfig)
              : null,
          change.lastModifiedAt,
          change.generationId,
        ],
      );
      return n > 0;
    },
    async deleteCa(id) {
      return (await db.run('DELETE FROM ca_certificates WHERE certificate_id = $1', [id])) > 0;
    },
    async countByCa(caId) {
      const rows = await db.query<{ n: unknown }>(
        'SELECT COUNT(*) AS n FROM certificates WHERE ca_certificate_id = $1',
        [caId],
      );
      return Number(rows[0]?.n ?? 0);
    },

    async getSetting(key) {
      const rows = await db.query<{ value: string }>('SELECT value FROM identity_settings WHERE key = $1', [
        key,
      ]);
      return rows[0]?.value;
    },
    async putSettingOnce(key, value) {
      await db.run(
        'INSERT INTO identity_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
        [key, value],
      );
      return (await store.getSetting(key)) ?? value;
    },
    async deleteSetting(key) {
      await db.run('DELETE FROM identity_settings WHERE key = $1', [key]);
    },
  };
  return store;
}
