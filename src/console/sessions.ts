import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { E } from '../errors/index.js';
import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Console sessions: sign-in with an access key (admin or read-only) to an opaque session cookie.
 *
 * Contract:
 * - The cookie holds 32 random bytes (base64url); the store keeps only their SHA-256, so a copy of the
 *   database gives no live session. Sessions live in the platform database (SQLite or PostgreSQL), so every
 *   node sharing PostgreSQL accepts them and a restart keeps them; each node caches a lookup for at most
 *   `cacheMs`, the bound for a sign-out on another node to take effect.
 * - A session expires `ttlMs` after sign-in (absolute), and at once when its access key is deleted (the key
 *   is looked up on every request; its role is read then, so a changed role applies at once too).
 * - Cookie: HttpOnly, SameSite=Strict, Path=/, Secure when the request came over TLS (directly or as a
 *   proxy's `x-forwarded-proto: https` says). SameSite=Strict keeps other sites' requests from carrying it.
 * - CSRF: every state-changing request (and every AWS API call made with the session) must carry
 *   `x-thingstead-csrf`, a token derived from the session secret (SHA-256 of a label and the secret): a page
 *   of another origin can neither read it nor send the header without a CORS preflight we never grant. A
 *   request whose Origin header names another host is refused whatever it carries.
 * - Failed sign-ins are limited per client address (a bounded table): past `maxFailuresPerMinute` the
 *   address is refused for the rest of the minute, counted.
 */

export const SESSION_COOKIE = 'thingstead_session';
export const CSRF_HEADER = 'x-thingstead-csrf';

export interface SessionKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly role: 'admin' | 'read-only';
  readonly name?: string;
}

export interface KeyLookup {
  lookup(accessKeyId: string): Promise<SessionKey | undefined>;
}

/** A live session as a request sees it. */
export interface Session {
  readonly accessKeyId: string;
  readonly name: string;
  readonly role: 'admin' | 'read-only';
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The CSRF token the browser must echo in `x-thingstead-csrf`. */
  readonly csrf: string;
}

export interface SessionStore {
  /** Check the key and create a session; returns the cookie value and the session. */
  signIn(
    accessKeyId: string,
    secretAccessKey: string,
    remote: string,
  ): Promise<{ token: string; session: Session }>;
  /** The session of a request's cookie: undefined without a cookie; throws ConsoleSessionExpired for a dead one. */
  fromRequest(req: IncomingMessage): Promise<Session | undefined>;
  /** Delete the session of this cookie value (sign-out); true when one existed. */
  signOut(token: string): Promise<boolean>;
  /** Refuse a cross-origin request and one without the session's CSRF token. */
  checkCsrf(req: IncomingMessage, session: Session): void;
  /** Purge expired sessions (run hourly by the module). */
  purge(): Promise<number>;
  close(): void;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'console sessions',
    sqlite:
      'CREATE TABLE console_sessions (token_hash TEXT PRIMARY KEY, access_key_id TEXT NOT NULL, ' +
      'created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)',
    postgres:
      'CREATE TABLE console_sessions (token_hash TEXT PRIMARY KEY, access_key_id TEXT NOT NULL, ' +
      'created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)',
  },
];

/** Sessions kept per access key; signing in beyond it ends that key's oldest sessions. */
const MAX_SESSIONS_PER_KEY = 100;
/** Client addresses tracked for failed sign-ins; beyond it the table is cleared (counted as a reset). */
const MAX_TRACKED_ADDRESSES = 10_000;

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');
const csrfOf = (token: string) => sha256(`thingstead console csrf\n${token}`);

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** True when the request reached us over TLS (or a TLS-terminating proxy says it did). */
export function isSecureRequest(req: IncomingMessage): boolean {
  const socket = req.socket as { encrypted?: boolean };
  return socket.encrypted === true || req.headers['x-forwarded-proto'] === 'https';
}

/** The Set-Cookie header value for a session (an empty token and maxAge 0 clear it). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return (
    `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}` +
    (secure ? '; Secure' : '')
  );
}

/**
 * The CSRF token's cookie (double submit): readable by the console's own scripts (not HttpOnly), so a page
 * load can call the API at once instead of first asking /console/api/session; SameSite=Strict and the
 * same-origin rule keep it from any other site. The server still compares the header with the token it
 * derives from the session secret, so the cookie is only a copy the browser may read.
 */
export const CSRF_COOKIE = 'thingstead_csrf';
export function csrfCookie(csrf: string, maxAgeSeconds: number, secure: boolean): string {
  return (
    `${CSRF_COOKIE}=${csrf}; Path=/; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}` +
    (secure ? '; Secure' : '')
  );
}

/** Refuse a request whose Origin names another host than the one it was sent to. */
export function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = req.headers.host ?? '';
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    throw E.ConsoleCrossOrigin({ origin, host });
  }
  if (originHost !== host) throw E.ConsoleCrossOrigin({ origin, host });
}

export async function openSessionStore(options: {
  readonly db: Database;
  readonly keys: KeyLookup;
  readonly ttlMs: number;
  readonly cacheMs?: number;
  readonly maxFailuresPerMinute?: number;
  readonly onSignIn?: (outcome: 'ok' | 'failed' | 'throttled') => void;
  readonly now?: () => number;
}): Promise<SessionStore> {
  const { db, keys, ttlMs } = options;
  const now = options.now ?? Date.now;
  const cacheMs = options.cacheMs ?? 2000;
  const maxFailures = options.maxFailuresPerMinute ?? 10;
  await migrate(db, 'console.sessions', MIGRATIONS);
  /** token hash -> row, with the time it was read. */
  const cache = new Map<
    string,
    { at: number; row: { accessKeyId: string; createdAt: number; expiresAt: number } | null }
  >();
  const failures = new Map<string, { windowStart: number; count: number }>();

  const throttled = (remote: string): number => {
    const f = failures.get(remote);
    if (!f || now() - f.windowStart > 60_000) return 0;
    return f.count >= maxFailures ? Math.ceil((f.windowStart + 60_000 - now()) / 1000) : 0;
  };
  const fail = (remote: string) => {
    const t = now();
    let f = failures.get(remote);
    if (!f || t - f.windowStart > 60_000) {
      if (failures.size >= MAX_TRACKED_ADDRESSES) failures.clear();
      failures.set(remote, (f = { windowStart: t, count: 0 }));
    }
    f.count++;
    options.onSignIn?.('failed');
    return E.ConsoleSignInFailed();
  };

  const store: SessionStore = {
    async signIn(accessKeyId, secretAccessKey, remote) {
      const wait = throttled(remote);
      if (wait > 0) {
        options.onSignIn?.('throttled');
        throw E.ConsoleSignInThrottled({ remote, seconds: wait });
      }
      const key = await keys.lookup(accessKeyId);
      if (!key) throw fail(remote);
      const given = Buffer.from(secretAccessKey);
      const expected = Buffer.from(key.secretAccessKey);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw fail(remote);
      const token = randomBytes(32).toString('base64url');
      const createdAt = now();
      const expiresAt = createdAt + ttlMs;
      await db.run(
        'INSERT INTO console_sessions (token_hash, access_key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
        [sha256(token), accessKeyId, createdAt, expiresAt],
      );
      // Bounded per key: the oldest sessions beyond the cap end (a script signing in in a loop).
      const rows = await db.query<{ token_hash: string }>(
        'SELECT token_hash FROM console_sessions WHERE access_key_id = $1 ORDER BY created_at DESC',
        [accessKeyId],
      );
      for (const r of rows.slice(MAX_SESSIONS_PER_KEY)) {
        await db.run('DELETE FROM console_sessions WHERE token_hash = $1', [r.token_hash]);
        cache.delete(r.token_hash);
      }
      options.onSignIn?.('ok');
      return {
        token,
        session: {
          accessKeyId,
          name: key.name ?? accessKeyId,
          role: key.role,
          createdAt,
          expiresAt,
          csrf: csrfOf(token),
        },
      };
    },

    async fromRequest(req) {
      const token = cookieValue(req.headers.cookie, SESSION_COOKIE);
      if (!token) return undefined;
      const hash = sha256(token);
      const t = now();
      let hit = cache.get(hash);
      if (!hit || t - hit.at >= cacheMs) {
        const rows = await db.query<{ access_key_id: string; created_at: unknown; expires_at: unknown }>(
          'SELECT access_key_id, created_at, expires_at FROM console_sessions WHERE token_hash = $1',
          [hash],
        );
        const r = rows[0];
        hit = {
          at: t,
          row: r
            ? {
                accessKeyId: r.access_key_id,
                createdAt: Number(r.created_at),
                expiresAt: Number(r.expires_at),
              }
            : null,
        };
        if (cache.size >= 10_000) cache.clear();
        cache.set(hash, hit);
      }
      const row = hit.row;
      if (!row || row.expiresAt <= t) throw E.ConsoleSessionExpired();
      const key = await keys.lookup(row.accessKeyId);
      if (!key) throw E.ConsoleSessionExpired();
      return {
        accessKeyId: row.accessKeyId,
        name: key.name ?? row.accessKeyId,
        role: key.role,
        createdAt: row.createdAt,
        expiresAt: row.expiresAt,
        csrf: csrfOf(token),
      };
    },

    async signOut(token) {
      const hash = sha256(token);
      cache.delete(hash);
      return (await db.run('DELETE FROM console_sessions WHERE token_hash = $1', [hash])) > 0;
    },

    checkCsrf(req, session) {
      checkOrigin(req);
      const given = req.headers[CSRF_HEADER];
      const a = Buffer.from(typeof given === 'string' ? given : '');
      const b = Buffer.from(session.csrf);
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw E.ConsoleCsrfToken();
    },

    async purge() {
      cache.clear();
      return db.run('DELETE FROM console_sessions WHERE expires_at <= $1', [now()]);
    },

    close() {
      cache.clear();
      failures.clear();
    },
  };
  return store;
}
