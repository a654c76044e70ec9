import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";

/**
 * Proxy token secrets use GitHub's scannable format (github.blog, "Behind GitHub's new
 * authentication token formats", 2021): a fixed prefix that secret scanners and the gateway
 * recognise, a random body, and a CRC32 checksum that rejects typos and random strings
 * without any lookup.
 *
 *   lk_ + base62(20 random bytes), left-padded to 27 chars + base62(crc32(lk_ + body)), 6 chars
 *
 * 20 bytes is 160 bits of entropy. Every part has a fixed length, so a secret is always
 * 36 characters and a length check rejects most garbage first.
 */
export const tokenSecretPrefix = "lk_";

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const randomByteCount = 20;
/** ceil(160 / log2(62)) = 27: enough base62 digits for any 160-bit value. */
const bodyLength = 27;
/** 62^6 > 2^32, so six digits hold any CRC32. */
const checksumLength = 6;

/** Length of every well-formed secret. */
export const tokenSecretLength = tokenSecretPrefix.length + bodyLength + checksumLength;

/** How many leading characters of a secret are shown to people (`lk_4Fq9x`). */
export const displayPrefixLength = 8;

const shape = new RegExp(`^${tokenSecretPrefix}[0-9A-Za-z]{${bodyLength + checksumLength}}$`);

/** A secret that passed every offline check (it may still be unknown to the database). */
export interface ParsedTokenSecret {
  secret: string;
  /** The first characters, safe to show and log. */
  displayPrefix: string;
}

/** Encodes a non-negative integer in base62, left-padded with `0` to `width` characters. */
export function encodeBase62(value: bigint, width: number): string {
  let out = "";
  let rest = value;
  while (rest > 0n) {
    out = base62Alphabet[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  if (out.length > width) throw new RangeError(`value needs more than ${width} base62 digits`);
  return out.padStart(width, "0");
}

function checksumOf(text: string): string {
  return encodeBase62(BigInt(crc32(text)), checksumLength);
}

/** Creates a new random secret (`lk_` + 27 + 6 characters). Shown to the caller once. */
export function generateTokenSecret(): ParsedTokenSecret {
  const bytes = randomBytes(randomByteCount);
  const body = encodeBase62(BigInt(`0x${bytes.toString("hex")}`), bodyLength);
  const secret = `${tokenSecretPrefix}${body}${checksumOf(tokenSecretPrefix + body)}`;
  return { secret, displayPrefix: displayPrefixOf(secret) };
}

/** The part of a secret that may be shown in lists and logs. */
export function displayPrefixOf(secret: string): string {
  return secret.slice(0, displayPrefixLength);
}

/**
 * Checks prefix, length, alphabet and checksum, in that order and without any I/O, so the
 * gateway and VerifyToken refuse junk (VERIFY_FAILURE_MALFORMED) before touching the
 * database. Returns undefined for anything that is not a well-formed Latchkey secret.
 */
export function parseTokenSecret(candidate: string): ParsedTokenSecret | undefined {
  if (candidate.length !== tokenSecretLength || !shape.test(candidate)) return undefined;
  const checked = candidate.slice(0, candidate.length - checksumLength);
  if (checksumOf(checked) !== candidate.slice(-checksumLength)) return undefined;
  return { secret: candidate, displayPrefix: displayPrefixOf(candidate) };
}
