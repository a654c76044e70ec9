import { randomBytes } from "node:crypto";

/**
 * Every id prefix Latchkey issues, in one table so a reader can tell a resource's kind
 * from its id alone and no two kinds collide.
 */
export const idPrefixes = {
  token: "tok",
  credential: "cred",
  event: "evt",
  adminKey: "key",
  request: "req",
} as const;

export type IdKind = keyof typeof idPrefixes;

const crockford = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * Returns a new time-ordered id such as `tok_01jd4k...`: 48 bits of milliseconds then
 * 80 random bits, in lower-case Crockford base32 (26 characters). Ids sort by creation
 * time, which keeps B-tree inserts at the right edge of the index (the UUIDv7 idea).
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(randomBytes(10), 6);
  return `${idPrefixes[kind]}_${encodeBase32(bytes)}`;
}

function encodeBase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += crockford[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += crockford[(buffer << (5 - bits)) & 31];
  return out;
}

/** Whether `id` looks like an id of this kind (prefix and alphabet; not that it exists). */
export function isId(kind: IdKind, id: string): boolean {
  return new RegExp(`^${idPrefixes[kind]}_[0-9a-hjkmnp-tv-z]{26}$`).test(id);
}
