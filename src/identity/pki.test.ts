import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureServerTls } from './index.js';

describe('platform CA and server certificate', () => {
  it('creates them on first start with owner-only keys, and reuses them after', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pki-'));
    const first = await ensureServerTls({
      dataDir,
      hostname: 'box1',
      certFile: null,
      keyFile: null,
      caFile: null,
    });
    const ca = new X509Certificate(first.caPem);
    const server = new X509Certificate(first.certPem);
    expect(ca.ca).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.subjectAltName).toContain('DNS:box1');
    for (const key of ['ca.key', 'server.key']) {
      expect(statSync(join(dataDir, 'tls', key)).mode & 0o777).toBe(0o600);
    }
    const second = await ensureServerTls({
      dataDir,
      hostname: 'box1',
      certFile: null,
      keyFile: null,
      caFile: null,
    });
    expect(second.certPem).toBe(first.certPem);
    expect(readFileSync(first.caFile, 'utf8')).toBe(first.caPem);
    // A new host name gets a new server certificate from the same CA.
    const renamed = await ensureServerTls({
      dataDir,
      hostname: 'box2',
      certFile: null,
      keyFile: null,
      caFile: null,
    });
    expect(renamed.caPem).toBe(first.caPem);
    expect(new X509Certificate(renamed.certPem).subjectAltName).toContain('DNS:box2');
  });
});
