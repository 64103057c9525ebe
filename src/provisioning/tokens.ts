import { createHash, randomBytes } from 'node:crypto';
import type { FlowsStore, TokenRefusal, TokenRow } from './flows-store.js';

/**
 * Certificate ownership tokens (reference §8.4): the proof, handed out with a certificate made over MQTT
 * (`$aws/certificates/create...`), that the device asking RegisterThing holds that certificate.
 *
 * Contract:
 * - Opaque and unguessable: 48 random bytes, base64url. Only their SHA-256 is stored, so a database read
 *   does not give usable tokens.
 * - Bound to one certificate (and remembered with the claim certificate and client id that asked for it).
 * - Single use: `take` leases the token to one attempt (`leaseMs`, so a crash mid-attempt frees it again);
 *   `spend` after a successful registration makes every later use fail with `used`; `release` after a refused
 *   one lets the device try again with the same token until it expires.
 * - Expiry: `ttlMs` after issue (AWS: one hour). The sweep (module.ts) deletes an expired token's
 *   certificate if it is still PENDING_ACTIVATION and attached to nothing.
 */
export interface OwnershipTokens {
  issue(input: { certificateId: string; claimCertificateId?: string; clientId?: string }): Promise<string>;
  take(token: string): Promise<{ ok: true; row: TokenRow } | { ok: false; reason: TokenRefusal }>;
  spend(token: string): Promise<void>;
  release(token: string): Promise<void>;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export function createOwnershipTokens(options: {
  store: FlowsStore;
  ttlMs: () => number;
  leaseMs: number;
  now?: () => number;
}): OwnershipTokens {
  const { store, leaseMs } = options;
  const now = options.now ?? Date.now;
  return {
    async issue(input) {
      const token = randomBytes(48).toString('base64url');
      const at = now();
      await store.insertToken({
        tokenHash: hashToken(token),
        certificateId: input.certificateId,
        claimCertificateId: input.claimCertificateId ?? null,
        clientId: input.clientId ?? null,
        createdAt: at,
        expiresAt: at + options.ttlMs(),
      });
      return token;
    },
    take(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 512)
        return Promise.resolve({ ok: false, reason: 'unknown' });
      const at = now();
      return store.claimToken(hashToken(token), at, at + leaseMs);
    },
    spend: (token) => store.spendToken(hashToken(token), now()),
    release: (token) => store.releaseToken(hashToken(token)),
  };
}
