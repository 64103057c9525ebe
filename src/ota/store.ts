/**
 * The OTA store: firmware file metadata and MQTT file-delivery streams, on the platform database (SQLite or
 * PostgreSQL: one portable implementation over `Database`).
 *
 * Concurrency contract: `insertStream` writes only when the id is free and `putStream` only when the stored
 * version still equals the expected one (false otherwise: the caller re-reads). A file row is an upsert: the
 * bytes are content-addressed, so two uploads of the same image are the same file (the later name and
 * version win).
 */
import type { Database } from '../store/index.js';
import { migrate } from '../store/index.js';
import { OTA_MIGRATIONS } from './migrations.js';

export interface FileRecord {
  /** Lower-case hex SHA-256 of the bytes: the file's identity. */
  readonly sha256: string;
  readonly size: number;
  readonly name: string | null;
  /** The firmware version the uploader gave (`--version`), if any. */
  readonly version: string | null;
  readonly createdAt: number;
}

export interface StreamFileRecord {
  readonly fileId: number;
  /** As given to CreateStream; `key` names a stored file (its SHA-256, or its name). */
  readonly s3Location: { readonly bucket: string; readonly key: string; readonly version?: string };
}

export interface StreamRecord {
  readonly streamId: string;
  readonly description: string | null;
  readonly files: readonly StreamFileRecord[];
  readonly roleArn: string | null;
  readonly tags: readonly { Key: string; Value?: string }[];
  /** streamVersion: 1 at create, +1 on every UpdateStream. */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface OtaStore {
  putFile(file: FileRecord): Promise<void>;
  getFile(sha256: string): Promise<FileRecord | null>;
  /** The newest file uploaded under `name`. */
  fileByName(name: string): Promise<FileRecord | null>;
  /** Files in SHA-256 order after `after`, at most `limit`. */
  listFiles(after: string | undefined, limit: number): Promise<FileRecord[]>;
  deleteFile(sha256: string): Promise<boolean>;
  /** False when the id exists. */
  insertStream(stream: StreamRecord): Promise<boolean>;
  getStream(streamId: string): Promise<StreamRecord | null>;
  /** Conditional on the stored version (see the contract). */
  putStream(stream: StreamRecord, expectedVersion: number): Promise<boolean>;
  deleteStream(streamId: string): Promise<boolean>;
  /** Streams in id order (descending unless `ascending`) after `after`, at most `limit`. */
  listStreams(after: string | undefined, limit: number, ascending: boolean): Promise<StreamRecord[]>;
}

type Row = Record<string, unknown>;

const fileOf = (r: Row): FileRecord => ({
  sha256: String(r.sha256),
  size: Number(r.size),
  name: typeof r.name === 'string' ? r.name : null,
  version: typeof r.version === 'string' ? r.version : null,
  createdAt: Number(r.created_at),
});

const streamOf = (r: Row): StreamRecord => {
  const body = JSON.parse(String(r.body)) as Pick<StreamRecord, 'description' | 'files' | 'roleArn' | 'tags'>;
  return {
    streamId: String(r.stream_id),
    ...body,
    version: Number(r.version),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
};

const bodyOf = (s: StreamRecord) =>
  JSON.stringify({ description: s.description, files: s.files, roleArn: s.roleArn, tags: s.tags });

/** Open (and migrate) the OTA store. */
export async function createOtaStore(db: Database): Promise<OtaStore> {
  await migrate(db, 'ota', OTA_MIGRATIONS);
  return {
    async putFile(f) {
      await db.run(
        'INSERT INTO ota_files (sha256, size, name, version, created_at) VALUES ($1, $2, $3, $4, $5) ' +
          'ON CONFLICT (sha256) DO UPDATE SET name = COALESCE(excluded.name, ota_files.name), ' +
          'version = COALESCE(excluded.version, ota_files.version), created_at = excluded.created_at',
        [f.sha256, f.size, f.name, f.version, f.createdAt],
      );
    },
    async getFile(sha256) {
      const [r] = await db.query('SELECT * FROM ota_files WHERE sha256 = $1', [sha256]);
      return r ? fileOf(r) : null;
    },
    async fileByName(name) {
      const [r] = await db.query(
        'SELECT * FROM ota_files WHERE name = $1 ORDER BY created_at DESC, sha256 LIMIT 1',
        [name],
      );
      return r ? fileOf(r) : null;
    },
    async listFiles(after, limit) {
      const rows = await db.query('SELECT * FROM ota_files WHERE sha256 > $1 ORDER BY sha256 LIMIT $2', [
        after ?? '',
        limit,
      ]);
      return rows.map(fileOf);
    },
    async deleteFile(sha256) {
      return (await db.run('DELETE FROM ota_files WHERE sha256 = $1', [sha256])) > 0;
    },
    async insertStream(s) {
      const n = await db.run(
        'INSERT INTO ota_streams (stream_id, body, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) ' +
          'ON CONFLICT (stream_id) DO NOTHING',
        [s.streamId, bodyOf(s), s.version, s.createdAt, s.updatedAt],
      );
      return n > 0;
    },
    async getStream(streamId) {
      const [r] = await db.query('SELECT * FROM ota_streams WHERE stream_id = $1', [streamId]);
      return r ? streamOf(r) : null;
    },
    async putStream(s, expectedVersion) {
      const n = await db.run(
        'UPDATE ota_streams SET body = $1, version = $2, updated_at = $3 WHERE stream_id = $4 AND version = $5',
        [bodyOf(s), s.version, s.updatedAt, s.streamId, expectedVersion],
      );
      return n > 0;
    },
    async deleteStream(streamId) {
      return (await db.run('DELETE FROM ota_streams WHERE stream_id = $1', [streamId])) > 0;
    },
    async listStreams(after, limit, ascending) {
      const rows = ascending
        ? await db.query('SELECT * FROM ota_streams WHERE stream_id > $1 ORDER BY stream_id LIMIT $2', [
            after ?? '',
            limit,
          ])
        : after === undefined
          ? await db.query('SELECT * FROM ota_streams ORDER BY stream_id DESC LIMIT $1', [limit])
          : await db.query(
              'SELECT * FROM ota_streams WHERE stream_id < $1 ORDER BY stream_id DESC LIMIT $2',
              [after, limit],
            );
      return rows.map(streamOf);
    },
  };
}
