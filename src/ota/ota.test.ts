import { describe, expect, it } from 'vitest';
import { parseRange } from './http.js';
import { blocksWanted, maxBlockFor } from './mqtt.js';
import { fileRefOf, resolvePresigned } from './presign.js';
import { createUrlSigner } from './signed-url.js';

describe('ranges (RFC 9110 single byte ranges)', () => {
  it('a-b, a-, -n; past the end is unsatisfiable; other forms serve the whole file', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual([0, 99]);
    expect(parseRange('bytes=900-', 1000)).toEqual([900, 999]);
    expect(parseRange('bytes=990-2000', 1000)).toEqual([990, 999]);
    expect(parseRange('bytes=-10', 1000)).toEqual([990, 999]);
    expect(parseRange('bytes=1000-', 1000)).toBe('bad');
    expect(parseRange('bytes=5-1', 1000)).toBe('bad');
    expect(parseRange('bytes=0-1,5-6', 1000)).toBeNull();
    expect(parseRange(undefined, 1000)).toBeNull();
  });
});

describe('GetStream block selection (AWS guide: "Build a bitmap for a GetStream request")', () => {
  it("the guide's example: o=20, bitmap 0x130080 asks for blocks 20, 21, 24 and 43", () => {
    const bitmap = Buffer.from('130080', 'hex');
    expect(blocksWanted({ offset: 20, count: 32, bitmap }, 1000, 512)).toEqual([20, 21, 24, 43]);
    expect(blocksWanted({ offset: 20, count: 2, bitmap }, 1000, 512)).toEqual([20, 21]);
    expect(blocksWanted({ offset: 20, count: undefined, bitmap }, 25, 512)).toEqual([20, 21, 24]);
  });
  it('without a bitmap: from o, n blocks, capped at 128 KB per request and the end of the file', () => {
    expect(blocksWanted({ offset: 3, count: 2, bitmap: undefined }, 10, 8)).toEqual([3, 4]);
    expect(blocksWanted({ offset: 8, count: undefined, bitmap: undefined }, 10, 8)).toEqual([8, 9]);
    expect(blocksWanted({ offset: 0, count: 100, bitmap: undefined }, 100, 2)).toEqual([0, 1]);
  });
  it('the largest block that fits one message: base64 costs 4/3 in JSON', () => {
    expect(maxBlockFor('json', 131_072)).toBe(98_184);
    expect(maxBlockFor('cbor', 131_072)).toBe(130_912);
    expect(maxBlockFor('cbor', 10_000_000)).toBe(131_072);
  });
});

describe('presigned-URL placeholders', () => {
  it('the object key names the file; the URL is JSON-escaped into the document', () => {
    expect(fileRefOf('https://s3.amazonaws.com/bucket/firmware/abc')).toBe('abc');
    expect(fileRefOf('https://bucket.s3.us-east-1.amazonaws.com/fw%20v2.bin')).toBe('fw v2.bin');
    const doc =
      '{"a":"${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k1}","b":"${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k2}"}';
    const out = resolvePresigned(doc, (ref) => `https://x/${ref}?q="1"`);
    expect(JSON.parse(out)).toEqual({ a: 'https://x/k1?q="1"', b: 'https://x/k2?q="1"' });
    expect(resolvePresigned('{"a":1}', () => 'never')).toBe('{"a":1}');
  });
});

describe('signed URLs', () => {
  const key = Buffer.alloc(32, 7);
  let now = 1_000_000_000_000;
  const signer = createUrlSigner(key, () => now);
  const q = (s: string) => new URLSearchParams(s);
  it('valid until the expiry; then expired; altered path, expiry or key: forged; no signature: missing', () => {
    const query = signer.sign('/ota/download/f', 1_000_000_060);
    expect(signer.check('/ota/download/f', q(query))).toBeNull();
    now = 1_000_000_060_000;
    expect(signer.check('/ota/download/f', q(query))).toEqual({
      reason: 'expired',
      expiresAt: 1_000_000_060,
    });
    now = 1_000_000_000_000;
    expect(signer.check('/ota/download/g', q(query))?.reason).toBe('forged');
    expect(signer.check('/ota/download/f', q(query.replace('060', '061')))?.reason).toBe('forged');
    expect(createUrlSigner(Buffer.alloc(32, 8), () => now).check('/ota/download/f', q(query))?.reason).toBe(
      'forged',
    );
    expect(signer.check('/ota/download/f', q(''))?.reason).toBe('missing');
  });
});
