import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareVersions, parseOtaDocument } from './document.js';
import { generateSigningKey, keyIdOf, signFile, verifyFile } from './signing.js';

describe('versions (anti-rollback)', () => {
  it('numeric parts compare as numbers, missing parts as 0', () => {
    expect(compareVersions('1.10.0', '1.9.2')).toBe(1);
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
    expect(compareVersions('2.0.0', '10.0.0')).toBe(-1);
    expect(compareVersions('1.2.0-rc1', '1.2.0-rc2')).toBe(-1);
  });
});

describe('job documents', () => {
  const ota = {
    version: '1.0.1',
    size: 3,
    sha256: 'a'.repeat(64),
    signature: 'c2ln',
    signatureAlgorithm: 'ECDSA-P256-SHA256',
    signingKeyId: 'k',
    url: 'https://x',
  };
  it('a valid document, and one reason per broken member', () => {
    expect(parseOtaDocument({ operation: 'thingstead.ota', ota })).toEqual(ota);
    expect(parseOtaDocument({ operation: 'other' })).toContain('not thingstead.ota');
    expect(parseOtaDocument({ operation: 'thingstead.ota', ota: { ...ota, sha256: 'x' } })).toContain(
      'ota.sha256',
    );
    expect(parseOtaDocument({ operation: 'thingstead.ota', ota: { ...ota, url: undefined } })).toContain(
      'neither',
    );
    expect(
      parseOtaDocument({ operation: 'thingstead.ota', ota: { ...ota, signatureAlgorithm: 'RSA' } }),
    ).toContain('not supported');
  });
});

describe('signatures (ECDSA P-256 over SHA-256)', () => {
  it('verifies with the signing key only, and not over other bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-sign-'));
    const file = join(dir, 'img');
    writeFileSync(file, Buffer.from('firmware'));
    const k = generateSigningKey();
    expect(k.keyId).toBe(keyIdOf(k.publicKeyPem));
    expect(k.keyId).toMatch(/^[0-9a-f]{32}$/);
    const s = await signFile(file, k.privateKeyPem);
    expect(s.size).toBe(8);
    expect(await verifyFile(file, k.publicKeyPem, s.signature)).toBe(true);
    expect(await verifyFile(file, generateSigningKey().publicKeyPem, s.signature)).toBe(false);
    writeFileSync(file, Buffer.from('firmwarE'));
    expect(await verifyFile(file, k.publicKeyPem, s.signature)).toBe(false);
    expect(await verifyFile(file, k.publicKeyPem, 'not base64 DER')).toBe(false);
  });
});
