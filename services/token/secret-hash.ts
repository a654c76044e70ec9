import { createHmac } from "node:crypto";

/** Shortest pepper accepted: 32 characters, as for the other server secrets. */
export const minPepperLength = 32;

/** Turns a secret into the value stored and looked up: HMAC-SHA-256(pepper, secret). */
export type SecretHasher = (secret: string) => Buffer;

/**
 * Creates the keyed hash used for secrets at rest. A keyed hash rather than a plain
 * SHA-256: a stolen database dump alone does not let anyone test candidate secrets; the
 * attacker also needs the pepper, which lives in configuration, not in the database.
 * No slow KDF is needed: secrets carry 160 random bits, so brute force is not the threat.
 * The pepper must never change while tokens exist: every stored hash depends on it.
 */
export function createSecretHasher(pepper: string): SecretHasher {
  if (pepper.length < minPepperLength) {
    // The pepper itself never goes into the message.
    throw new Error(`token pepper must be at least ${minPepperLength} characters`);
  }
  return (secret) => createHmac("sha256", pepper).update(secret, "utf8").digest();
}
