import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** Bytes in an AES-256-GCM nonce: 96 bits, the size GCM is specified for (NIST SP 800-38D). */
export const nonceBytes = 12;
/** Bytes in the authentication tag: the full 128 bits. */
const tagBytes = 16;

/** A fresh random nonce. Random nonces are safe here: keys are never used near 2^32 times. */
export function newNonce(): Buffer {
  return randomBytes(nonceBytes);
}

/** Encrypts with AES-256-GCM; returns the ciphertext followed by the 16-byte tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: tagBytes });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Decrypts what aesGcmSeal produced. Any mismatch (key, nonce, associated data, a flipped
 * bit) throws the same DecryptError, which says no more than that decryption failed.
 */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer {
  if (sealed.length < tagBytes || nonce.length !== nonceBytes) throw new DecryptError();
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: tagBytes });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
    return Buffer.concat([
      decipher.update(sealed.subarray(0, sealed.length - tagBytes)),
      decipher.final(),
    ]);
  } catch {
    // OpenSSL's message adds nothing, and nothing about the data may reach a caller.
    throw new DecryptError();
  }
}

/** Decryption failed: wrong key, tampered data, or data moved to another row. */
export class DecryptError extends Error {
  constructor() {
    super("could not decrypt: wrong key, tampered data or mismatched associated data");
    this.name = "DecryptError";
  }
}
