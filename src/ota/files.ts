/**
 * The firmware bytes: content-addressed files under `<dataDir>/files/<sha256>` (mode 0600 in a 0700
 * folder). A write streams the upload into a temporary file while hashing it and renames it into place only
 * once it is complete, within the size bound and (when the uploader declared one) of the declared digest,
 * so a reader never sees a partial or wrong file. Writing the same bytes twice is one file.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, rmSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { E } from '../errors/index.js';

export interface BlobStore {
  /** Where the file of `sha256` lives (it may not exist). */
  path(sha256: string): string;
  exists(sha256: string): boolean;
  /**
   * Store the bytes of `body`; throws OtaFileTooLarge past `maxBytes`, OtaUploadDigest when `expected`
   * does not match. Returns the digest and size of what was stored.
   */
  write(
    body: Readable,
    expected?: { sha256?: string; size?: number },
  ): Promise<{ sha256: string; size: number }>;
  remove(sha256: string): void;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createBlobStore(options: { dataDir: string; maxBytes: number }): BlobStore {
  const dir = join(options.dataDir, 'files');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = (sha256: string) => {
    if (!SHA256_HEX.test(sha256)) throw E.OtaFileNotFound({ file: sha256 });
    return join(dir, sha256);
  };
  return {
    path,
    exists: (sha256) => SHA256_HEX.test(sha256) && existsSync(join(dir, sha256)),
    async write(body, expected = {}) {
      if (expected.size !== undefined && expected.size > options.maxBytes)
        throw E.OtaFileTooLarge({ size: expected.size, limit: options.maxBytes });
      const tmp = join(dir, `.upload-${randomUUID()}`);
      const hash = createHash('sha256');
      let size = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > options.maxBytes) return done(E.OtaFileTooLarge({ size, limit: options.maxBytes }));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      try {
        await pipeline(body, meter, createWriteStream(tmp, { mode: 0o600 }));
        const sha256 = hash.digest('hex');
        if (expected.sha256 !== undefined && expected.sha256 !== sha256)
          throw E.OtaUploadDigest({ declared: expected.sha256, actual: sha256 });
        if (expected.size !== undefined && expected.size !== size)
          throw E.OtaUploadInvalid({
            problem: `the body is ${size} bytes, not the declared ${expected.size}`,
          });
        renameSync(tmp, join(dir, sha256));
        return { sha256, size };
      } finally {
        rmSync(tmp, { force: true });
      }
    },
    remove(sha256) {
      rmSync(path(sha256), { force: true });
    },
  };
}

/** Size of a stored file, or null when it is missing. */
export function blobSize(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}
