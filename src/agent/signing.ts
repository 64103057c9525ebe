/**
 * Firmware image signatures: ECDSA P-256 over the image's SHA-256 digest (DER signature, base64), the
 * algorithm AWS IoT code signing uses for FreeRTOS OTA ("SHA256withECDSA"). The private key stays with the
 * operator (`thingstead ota keygen` writes it 0600); devices hold the public keys they trust, by key id
 * (the first 16 bytes, hex, of the SHA-256 of the key's SubjectPublicKeyInfo DER).
 */
import { createHash, createPublicKey, createSign, createVerify, generateKeyPairSync } from 'node:crypto';
import { createReadStream } from 'node:fs';

export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 32);
}

/** A new ECDSA P-256 key pair (PKCS#8 private key, SPKI public key, PEM) and its key id. */
export function generateSigningKey(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem,
    keyId: keyIdOf(publicKeyPem),
  };
}

/** Read a file once: its SHA-256, size, and (with a key) its signature. */
async function scan(
  file: string,
  sign?: ReturnType<typeof createSign>,
  verify?: ReturnType<typeof createVerify>,
) {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    sign?.update(chunk);
    verify?.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export const digestFile = (file: string) => scan(file);

/** Sign an image file: its digest, size and the base64 DER signature. */
export async function signFile(file: string, privateKeyPem: string) {
  const signer = createSign('SHA256');
  const { sha256, size } = await scan(file, signer);
  return { sha256, size, signature: signer.sign(privateKeyPem).toString('base64') };
}

/** True when `signature` (base64 DER) verifies over the file with the public key. Never throws. */
export async function verifyFile(file: string, publicKeyPem: string, signature: string): Promise<boolean> {
  try {
    const verifier = createVerify('SHA256');
    await scan(file, undefined, verifier);
    return verifier.verify(publicKeyPem, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
