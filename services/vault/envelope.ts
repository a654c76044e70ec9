import { randomBytes } from "node:crypto";
import { aesGcmOpen, aesGcmSeal, newNonce } from "./aes-gcm.ts";
import type { KeyEncryptionKeys } from "./keyring.ts";

/** Where a sealed secret belongs: the row its ciphertext is bound to. */
export interface EnvelopeSlot {
  tenant: string;
  credentialId: string;
  version: number;
}

/** What is stored per credential version; every field is safe to keep at rest. */
export interface SealedSecret {
  /** Nonce of the material encryption. */
  nonce: Uint8Array;
  /** The material encrypted under the data key, followed by its 16-byte tag. */
  ciphertext: Uint8Array;
  /** The data key wrapped by the KEK. */
  wrappedKey: Uint8Array;
  /** Nonce of the wrap (empty if the keyring keeps it inside wrappedKey). */
  wrappedNonce: Uint8Array;
  /** The KEK version that wrapped the data key. */
  kekVersion: number;
}

const prefix = "latchkey/vault/v1";

/**
 * Associated data of the material ciphertext: binds it to tenant, credential and version,
 * so ciphertext copied into another row fails to decrypt. Tenant and credential ids cannot
 * contain `|`, so the encoding is unambiguous. The KEK version is deliberately not here but
 * in dataKeyAad: a KEK rotation then re-wraps data keys without touching any ciphertext.
 */
export function materialAad(slot: EnvelopeSlot): Buffer {
  return Buffer.from(`${prefix}|material|${slot.tenant}|${slot.credentialId}|${slot.version}`);
}

/**
 * Associated data of the wrapped data key: tenant, credential, version and KEK version. A
 * wrapped key moved to another row, or relabelled with another KEK version, fails to unwrap.
 */
export function dataKeyAad(slot: EnvelopeSlot, kekVersion: number): Buffer {
  return Buffer.from(
    `${prefix}|data-key|${slot.tenant}|${slot.credentialId}|${slot.version}|${kekVersion}`,
  );
}

/**
 * Envelope-encrypts `plaintext` for one credential version: a fresh 32-byte data key
 * encrypts it with AES-256-GCM, and the current KEK wraps that data key. The data key
 * itself never leaves this function.
 */
export async function seal(
  keys: KeyEncryptionKeys,
  slot: EnvelopeSlot,
  plaintext: Uint8Array,
): Promise<SealedSecret> {
  const dataKey = randomBytes(32);
  try {
    const nonce = newNonce();
    const ciphertext = aesGcmSeal(dataKey, nonce, plaintext, materialAad(slot));
    const kekVersion = keys.current.version;
    const wrapped = await keys.current.wrap(dataKey, dataKeyAad(slot, kekVersion));
    return { nonce, ciphertext, wrappedKey: wrapped.key, wrappedNonce: wrapped.nonce, kekVersion };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Opens what seal produced for the same slot. Throws DecryptError when anything does not
 * match: another KEK, tampered bytes, or data that belongs to another row.
 */
export async function open(
  keys: KeyEncryptionKeys,
  slot: EnvelopeSlot,
  sealed: SealedSecret,
): Promise<Uint8Array> {
  const dataKey = await unwrapDataKey(keys, slot, sealed);
  try {
    return aesGcmOpen(dataKey, sealed.nonce, sealed.ciphertext, materialAad(slot));
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Re-wraps a sealed secret's data key with the current KEK (KEK rotation). The material
 * ciphertext and its nonce stay as they are.
 */
export async function rewrap(
  keys: KeyEncryptionKeys,
  slot: EnvelopeSlot,
  sealed: SealedSecret,
): Promise<SealedSecret> {
  const dataKey = await unwrapDataKey(keys, slot, sealed);
  try {
    const kekVersion = keys.current.version;
    const wrapped = await keys.current.wrap(dataKey, dataKeyAad(slot, kekVersion));
    return { ...sealed, wrappedKey: wrapped.key, wrappedNonce: wrapped.nonce, kekVersion };
  } finally {
    dataKey.fill(0);
  }
}

function unwrapDataKey(
  keys: KeyEncryptionKeys,
  slot: EnvelopeSlot,
  sealed: SealedSecret,
): Promise<Uint8Array> {
  return keys.unwrap(
    sealed.kekVersion,
    { key: sealed.wrappedKey, nonce: sealed.wrappedNonce },
    dataKeyAad(slot, sealed.kekVersion),
  );
}
