import { DomainError } from "../../libs/errors/index.ts";
import { aesGcmOpen, aesGcmSeal, newNonce } from "./aes-gcm.ts";

/** A data key after wrapping: the ciphertext (with its tag) and the nonce used, if any. */
export interface WrappedDataKey {
  /** The wrapped key; for the local keyring the AES-256-GCM ciphertext and its tag. */
  key: Uint8Array;
  /** The wrapping nonce; empty for a keyring (a KMS, say) that keeps it inside `key`. */
  nonce: Uint8Array;
}

/**
 * The key-encryption keys (KEKs) that wrap per-version data keys. The vault only wraps with
 * the current version and unwraps with whichever version wrapped a row, so a KMS can stand
 * behind this interface without the vault knowing where the keys live.
 */
export interface KeyEncryptionKeys {
  /** The newest KEK: every new data key is wrapped with it. */
  readonly current: {
    readonly version: number;
    /** Wraps `dataKey`, binding it to `aad`. */
    wrap(dataKey: Uint8Array, aad: Uint8Array): Promise<WrappedDataKey>;
  };
  /**
   * Unwraps a data key wrapped by KEK `version`. Throws DecryptError if the key, the wrapped
   * bytes or `aad` do not match, and FailedPrecondition if that KEK version is unknown.
   */
  unwrap(version: number, wrapped: WrappedDataKey, aad: Uint8Array): Promise<Uint8Array>;
}

/** One KEK of a local keyring. */
export interface LocalKek {
  /** Version number, from 1; stored beside every data key it wraps. */
  version: number;
  /** 32 bytes of key material. */
  key: Uint8Array;
}

/**
 * A keyring over KEKs held in memory (read from the environment or a file): AES-256-GCM
 * with a random 96-bit nonce per wrap. `current` wraps; `older` keys only unwrap, which
 * keeps rows written before a KEK rotation readable until they are re-wrapped.
 */
export function createLocalKeyring(
  current: LocalKek,
  older: readonly LocalKek[] = [],
): KeyEncryptionKeys {
  const keys = new Map<number, Buffer>();
  for (const kek of [current, ...older]) {
    if (!Number.isInteger(kek.version) || kek.version < 1) {
      throw new Error(`KEK version must be a positive integer, got ${kek.version}`);
    }
    if (kek.key.length !== 32) throw new Error(`KEK version ${kek.version} must be 32 bytes`);
    if (keys.has(kek.version)) throw new Error(`KEK version ${kek.version} is given twice`);
    // A private copy: the caller's buffer may be reused or zeroed after this returns.
    keys.set(kek.version, Buffer.from(kek.key));
  }
  const currentKey = keys.get(current.version) as Buffer;
  return {
    current: {
      version: current.version,
      async wrap(dataKey, aad) {
        const nonce = newNonce();
        return { key: aesGcmSeal(currentKey, nonce, dataKey, aad), nonce };
      },
    },
    async unwrap(version, wrapped, aad) {
      const kek = keys.get(version);
      if (!kek) {
        // An operator dropped a KEK that still wraps data keys: name the missing version.
        throw new DomainError(
          "failed_precondition",
          `key-encryption key version ${version} is not configured`,
        );
      }
      return aesGcmOpen(kek, wrapped.nonce, wrapped.key, aad);
    },
  };
}
