import { invalidArgument } from "../errors/index.ts";

/** Clamps a requested page size: 0 means the default, above `max` is cut to `max`. */
export function pageSize(requested: number, defaultSize = 50, max = 1000): number {
  if (requested < 0) throw invalidArgument("page_size must not be negative");
  if (requested === 0) return defaultSize;
  return Math.min(requested, max);
}

/**
 * Encodes a keyset cursor (the sort key of the last row returned) as an opaque page token.
 * Keyset rather than offset: a row inserted between two calls neither repeats nor skips.
 */
export function encodePageToken(cursor: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

/** Decodes a page token from encodePageToken; an empty token gives undefined. */
export function decodePageToken<T extends Record<string, string | number>>(
  token: string,
  keys: readonly (keyof T & string)[],
): T | undefined {
  if (token === "") return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (typeof value === "object" && value !== null && keys.every((k) => k in value)) {
      return value as T;
    }
  } catch {
    // Fall through to the uniform error below: a bad token is the caller's mistake.
  }
  throw invalidArgument("page_token is not a token this server issued");
}
