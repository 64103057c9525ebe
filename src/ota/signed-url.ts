/**
 * Time-limited signed download URLs (Thingstead's stand-in for S3 presigned URLs): HMAC-SHA256 over the
 * method, the path and the expiry, with a 32-byte key kept in `<dataDir>/ota-url.key` (mode 0600, made on
 * first start). The check is constant time; an expired, altered or unsigned URL is refused with a reason.
 * Every process serving downloads for the same URLs must share the key file.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const EXPIRES_PARAM = 'X-Thingstead-Expires';
export const SIGNATURE_PARAM = 'X-Thingstead-Signature';

/** Why a URL was refused: `missing` (no signature), `expired`, `forged` (the signature does not match). */
export type UrlRefusal = 'missing' | 'expired' | 'forged';

export interface UrlSigner {
  /** The query string (`X-Thingstead-Expires=...&X-Thingstead-Signature=...`) that makes `path` valid until `expiresAt` (epoch s). */
  sign(path: string, expiresAt: number): string;
  /** Null when the URL is valid now, else why not (with the expiry for `expired`). */
  check(path: string, query: URLSearchParams): { reason: UrlRefusal; expiresAt?: number } | null;
}

/** Read the URL key from `<dataDir>/ota-url.key`, creating it (0600) on first use. */
export function loadUrlKey(dataDir: string): Buffer {
  const file = join(dataDir, 'ota-url.key');
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process sharing the data directory made it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  if (key.length < 32) throw new Error(`${file} does not hold a 32-byte hex key`);
  return key;
}

export function createUrlSigner(key: Buffer, now: () => number = Date.now): UrlSigner {
  const mac = (path: string, expiresAt: number) =>
    createHmac('sha256', key).update(`GET\n${path}\n${expiresAt}`, 'utf8').digest();
  return {
    sign(path, expiresAt) {
      return `${EXPIRES_PARAM}=${expiresAt}&${SIGNATURE_PARAM}=${mac(path, expiresAt).toString('base64url')}`;
    },
    check(path, query) {
      const expires = query.get(EXPIRES_PARAM);
      const signature = query.get(SIGNATURE_PARAM);
      if (expires === null || signature === null || !/^\d{1,12}$/.test(expires)) return { reason: 'missing' };
      const expiresAt = Number(expires);
      const given = Buffer.from(signature, 'base64url');
      const expected = mac(path, expiresAt);
      // Constant time; the length is not secret (always 32 bytes).
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { reason: 'forged' };
      if (now() >= expiresAt * 1000) return { reason: 'expired', expiresAt };
      return null;
    },
  };
}
