/**
 * The OTA service: firmware files (content-addressed bytes + metadata), signed download URLs, the job
 * document hook that resolves `${aws:iot:s3-presigned-url:...}`, and MQTT file-delivery streams
 * (CreateStream, DescribeStream, UpdateStream, DeleteStream, ListStreams: reference §3, AWS IoT API
 * reference "CreateStream").
 */
import type { Readable } from 'node:stream';
import { E } from '../errors/index.js';
import { SHA256_HEX, type BlobStore } from './files.js';
import { resolvePresigned } from './presign.js';
import type { UrlSigner } from './signed-url.js';
import type { FileRecord, OtaStore, StreamFileRecord, StreamRecord } from './store.js';

export interface OtaServiceOptions {
  readonly store: OtaStore;
  readonly blobs: BlobStore;
  readonly signer: UrlSigner;
  /** Base URL devices download from (device HTTPS when on, else the HTTP API), read per URL. */
  readonly downloadBase: () => string;
  /** Expiry of a signed URL when the job sets no presignedUrlConfig.expiresInSec (s). */
  readonly defaultExpirySeconds: number;
  readonly arnPrefix: string;
  readonly now?: () => number;
}

export type OtaService = ReturnType<typeof createOtaService>;

/** The path a stored file is downloaded from (what the URL signature covers). */
export const downloadPath = (ref: string) => `/ota/download/${encodeURIComponent(ref)}`;

export function createOtaService(options: OtaServiceOptions) {
  const { store, blobs, signer } = options;
  const now = options.now ?? Date.now;
  const streamArn = (id: string) => `${options.arnPrefix}:stream/${id}`;

  async function findFile(ref: string): Promise<FileRecord | null> {
    const f = SHA256_HEX.test(ref) ? await store.getFile(ref) : await store.fileByName(ref);
    return f && blobs.exists(f.sha256) ? f : null;
  }
  async function mustFile(ref: string): Promise<FileRecord> {
    const f = await findFile(ref);
    if (!f) throw E.OtaFileNotFound({ file: ref });
    return f;
  }

  async function checkFiles(files: readonly StreamFileRecord[]): Promise<void> {
    const seen = new Set<number>();
    for (const f of files) {
      if (seen.has(f.fileId)) throw E.StreamFileDuplicate({ fileId: f.fileId });
      seen.add(f.fileId);
      const ref = f.s3Location.key.split('/').filter(Boolean).pop() ?? '';
      if (!(await findFile(ref)))
        throw E.StreamFileUnknown({ fileId: f.fileId, bucket: f.s3Location.bucket, key: f.s3Location.key });
    }
  }

  const streamShape = (s: StreamRecord) => ({
    streamId: s.streamId,
    streamArn: streamArn(s.streamId),
    description: s.description ?? undefined,
    streamVersion: s.version,
  });

  return {
    /** Store an upload (see BlobStore.write) and record it; the same bytes again update name and version. */
    async upload(
      body: Readable,
      meta: { sha256?: string; size?: number; name?: string; version?: string },
    ): Promise<FileRecord> {
      const { sha256, size } = await blobs.write(body, meta);
      const record: FileRecord = {
        sha256,
        size,
        name: meta.name ?? null,
        version: meta.version ?? null,
        createdAt: now(),
      };
      await store.putFile(record);
      return (await store.getFile(sha256)) ?? record;
    },
    /** A stored file by SHA-256 or by name (the newest under it); null when missing. */
    findFile,
    mustFile,
    fileOnDisk: (sha256: string) => blobs.path(sha256),
    async listFiles(after: string | undefined, limit: number) {
      return store.listFiles(after, limit);
    },
    async deleteFile(sha256: string) {
      if (!(await store.deleteFile(sha256))) throw E.OtaFileNotFound({ file: sha256 });
      blobs.remove(sha256);
    },

    /** A signed download URL for a stored file reference, valid `expiresInSec` from now. */
    downloadUrl(ref: string, expiresInSec = options.defaultExpirySeconds): string {
      const path = downloadPath(ref);
      const expiresAt = Math.floor(now() / 1000) + expiresInSec;
      return `${options.downloadBase()}${path}?${signer.sign(path, expiresAt)}`;
    },
    /** The job-document hook: `${aws:iot:s3-presigned-url:...}` placeholders become signed URLs. */
    resolveDocument(document: string, expiresInSec?: number): string {
      return resolvePresigned(document, (ref) => this.downloadUrl(ref, expiresInSec));
    },

    // ---- streams (MQTT file delivery)
    streamArn,
    async createStream(input: {
      streamId: string;
      description?: string;
      files: StreamFileRecord[];
      roleArn?: string;
      tags?: { Key: string; Value?: string }[];
    }) {
      await checkFiles(input.files);
      const t = now();
      const s: StreamRecord = {
        streamId: input.streamId,
        description: input.description ?? null,
        files: input.files,
        roleArn: input.roleArn ?? null,
        tags: input.tags ?? [],
        version: 1,
        createdAt: t,
        updatedAt: t,
      };
      if (!(await store.insertStream(s))) throw E.StreamAlreadyExists({ streamId: s.streamId });
      return streamShape(s);
    },
    async getStream(streamId: string): Promise<StreamRecord> {
      const s = await store.getStream(streamId);
      if (!s) throw E.StreamNotFound({ streamId });
      return s;
    },
    async describeStream(streamId: string) {
      const s = await this.getStream(streamId);
      return {
        streamInfo: {
          ...streamShape(s),
          files: s.files,
          createdAt: s.createdAt / 1000,
          lastUpdatedAt: s.updatedAt / 1000,
          ...(s.roleArn !== null ? { roleArn: s.roleArn } : {}),
        },
      };
    },
    async updateStream(input: {
      streamId: string;
      description?: string;
      files?: StreamFileRecord[];
      roleArn?: string;
    }) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const s = await this.getStream(input.streamId);
        if (input.files) await checkFiles(input.files);
        const next: StreamRecord = {
          ...s,
          description: input.description ?? s.description,
          files: input.files ?? s.files,
          roleArn: input.roleArn ?? s.roleArn,
          version: s.version + 1,
          updatedAt: now(),
        };
        if (await store.putStream(next, s.version)) return streamShape(next);
      }
      throw E.StreamWriteConflict({ streamId: input.streamId });
    },
    async deleteStream(streamId: string) {
      if (!(await store.deleteStream(streamId))) throw E.StreamNotFound({ streamId });
    },
    async listStreams(after: string | undefined, limit: number, ascending: boolean) {
      const rows = await store.listStreams(after, limit + 1, ascending);
      const items = rows.slice(0, limit);
      return { streams: items.map(streamShape), more: rows.length > limit, last: items[items.length - 1] };
    },
  };
}
