import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/**
 * The console's static files: the Vite build in `dist/console/web` (built by `npm run build`).
 *
 * Contract:
 * - Only files found in the build directory are served (a table built when the directory is read), so no
 *   request path can reach outside it. The table is read at start and again, at most every 2 s, while the
 *   build is missing (a build made after start is picked up).
 * - `index.html` is served at `/` and `/console/` with `Cache-Control: no-cache` (a new build is seen on
 *   reload); hashed assets under `/console/assets/` are `immutable` for a year.
 * - Every response carries a strict Content-Security-Policy (scripts, styles and connections to this origin
 *   only, no framing, no inline script), nosniff, no referrer. Text files are gzipped once, in memory.
 * - Without a build, `/` answers 503 with a page that says how to build it.
 */

/** The Content-Security-Policy of every console response. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

interface StaticFile {
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly type: string;
  readonly etag: string;
  readonly immutable: boolean;
}

/** The build directory: `dist/console/web` of this package, from src/console or dist/console alike. */
export function defaultConsoleDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'console', 'web');
}

function readTable(dir: string): Map<string, StaticFile> | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const table = new Map<string, StaticFile>();
  // A file can vanish while this walks (a rebuild empties the directory): it is skipped, not fatal.
  const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch (err) {
      if (gone(err)) return;
      throw err;
    }
    for (const entry of entries) {
      const path = join(d, entry);
      let body: Buffer;
      try {
        if (statSync(path).isDirectory()) {
          walk(path);
          continue;
        }
        body = readFileSync(path);
      } catch (err) {
        if (gone(err)) continue;
        throw err;
      }
      const rel = relative(dir, path).split(sep).join('/');
      const type = TYPES[extname(entry)] ?? 'application/octet-stream';
      const text = /^(text\/|application\/json|image\/svg)/.test(type);
      table.set(rel, {
        body,
        gzip: text && body.length > 1024 ? gzipSync(body) : null,
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        immutable: rel.startsWith('assets/'),
      });
    }
  };
  walk(dir);
  return table;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Thingstead console not built</title>
<h1>The console is not built</h1>
<p>This checkout has no console build in <code>dist/console/web</code>. Run <code>npm run build</code>
(or <code>npx vite build --config console/vite.config.ts</code>) and reload this page.</p>
<p>The AWS-compatible API, <code>/metrics</code> and <code>/healthz</code> work meanwhile.</p>`;

/** Serve the console's files; returns true when the request was for one. */
export function createStaticFiles(dir: string) {
  let table = readTable(dir);
  let checkedAt = Date.now();
  const current = () => {
    if (!table && Date.now() - checkedAt > 2000) {
      table = readTable(dir);
      checkedAt = Date.now();
    }
    return table;
  };
  return (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    let rel: string;
    if (path === '/' || path === '/console' || path === '/console/' || path === '/index.html')
      rel = 'index.html';
    else if (path.startsWith('/console/')) rel = path.slice('/console/'.length);
    else if (path === '/favicon.ico' || path === '/favicon.svg') rel = 'favicon.svg';
    else return false;
    const files = current();
    if (!files) {
      if (rel !== 'index.html') return false;
      res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' });
      res.end(NOT_BUILT);
      return true;
    }
    const file = files.get(rel);
    if (!file) return false;
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      etag: file.etag,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      vary: 'accept-encoding',
    };
    if (req.headers['if-none-match'] === file.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const gzip = file.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? file.gzip : file.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
