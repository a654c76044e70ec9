/** Header helpers shared by the request and response rewriting. */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never
 * forwarded, in either direction. `proxy-connection` is the pre-standard spelling some
 * clients still send.
 */
export const hopByHop: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Extra header names a `Connection` header lists (RFC 9110 §7.6.1: the recipient removes
 * them too), lower-case; undefined when it lists only the usual `close`/`keep-alive`, which
 * is almost always, so the common case allocates nothing.
 */
export function connectionNamed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value === "string" &&
    (equalsLowerCase(value, "keep-alive") || equalsLowerCase(value, "close"))
  ) {
    return undefined;
  }
  let named: Set<string> | undefined;
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(",")) {
      const name = token.trim().toLowerCase();
      if (name === "" || name === "close" || name === "keep-alive") continue;
      named ??= new Set();
      named.add(name);
    }
  }
  return named;
}

/**
 * Whether `name` equals the lower-case ASCII `lower`, ignoring case, without allocating.
 * Header names are tokens (RFC 9110 §5.1), so folding A-Z is the whole of it.
 */
export function equalsLowerCase(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}
