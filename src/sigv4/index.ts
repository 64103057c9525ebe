/**
 * AWS Signature Version 4: request signing and server-side verification (reference §7.2). A leaf context
 * (it depends on errors only), so the HTTP API can verify requests without depending on identity, and
 * identity, policy and the other contexts can declare their API operations without a cycle.
 * Imports: errors.
 */
export {
  verifySigV4,
  canonicalUri,
  canonicalQuery,
  uriEncode,
  signingKey,
  signRequest,
  MAX_SKEW_MS,
  type SigV4Request,
  type SigV4Key,
  type SigV4Verified,
  type SigV4VerifyOptions,
} from './sigv4.js';
