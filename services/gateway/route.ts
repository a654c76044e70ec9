import { upstreamSlugPattern } from "../../libs/policy-engine/index.ts";
import { equalsLowerCase } from "./headers.ts";
import { type Refusal, refusals } from "./refusal.ts";

/** Where the client put its proxy token. */
export type CredentialSource = "authorization" | "x-api-key" | "none";

/** A request bound for an upstream, as parsed from its target and headers. */
export interface ProxyRoute {
  readonly kind: "proxy";
  /** Upstream slug: the first path segment. */
  readonly slug: string;
  /**
   * The rest of the path, starting with `/`: exactly the bytes forwarded after the
   * upstream's base path, and the path policy is evaluated on.
   */
  readonly path: string;
  /** The query string without `?` ("" when absent); never logged or audited. */
  readonly query: string;
  /** The presented proxy token, undefined when none was presented. */
  readonly secret: string | undefined;
  readonly credentialSource: CredentialSource;
  /** Declared body length; -1 when the body is chunked or absent. */
  readonly contentLength: number;
  /** The body is sent with Transfer-Encoding (length unknown until it ends). */
  readonly chunked: boolean;
}

/** A request for the gateway itself, under the reserved `/_latchkey/` prefix. */
export interface InternalRoute {
  readonly kind: "internal";
  readonly endpoint: "healthz" | "readyz";
}

/** Limits route() enforces. */
export interface RouteLimits {
  /** Longest request target, in bytes. */
  maxTargetBytes: number;
}

const healthz: InternalRoute = { kind: "internal", endpoint: "healthz" };
const readyz: InternalRoute = { kind: "internal", endpoint: "readyz" };

/** Reserved prefix for the gateway's own endpoints; upstream slugs never start with `_`. */
export const reservedPrefix = "/_latchkey/";

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const DOT = 0x2e;
const SEMICOLON = 0x3b;
const QUESTION = 0x3f;
const HASH = 0x23;

/**
 * Step 1 of the request path (DESIGN.md §4): refuses anything ambiguous before any lookup,
 * then splits `/{slug}/{rest}?{query}`. What is refused and why:
 *
 * - absolute-form (`GET http://x/`) and authority-form targets: the upstream comes from
 *   configuration only, never from the request;
 * - empty segments (`//host`, `/a//b`): a scheme-relative URL, and proxies and upstreams
 *   (nginx `merge_slashes`) may collapse them, so policy would see a different path than
 *   the upstream;
 * - encoded `/`, `\` and NUL, raw backslashes, and dot segments in any spelling (`..`,
 *   `%2e%2E`, `..;param` as Tomcat reads it): the classic ways to make a path mean one thing
 *   to the gateway's policy and another to the upstream (CVE-2021-41773 and kin);
 * - malformed percent-encoding, control or non-ASCII bytes, fragments;
 * - more than one credential header (two Authorization, two x-api-key, or both): which
 *   one is "the" token must never depend on who reads the headers;
 * - TRACE (it would echo the injected credential back) and CONNECT.
 */
export function route(
  method: string,
  target: string,
  rawHeaders: readonly string[],
  limits: RouteLimits,
): ProxyRoute | InternalRoute | Refusal {
  if (target.length > limits.maxTargetBytes) return refusals.targetTooLong;
  if (target.charCodeAt(0) !== SLASH) return refusals.absoluteForm;
  if (method === "TRACE" || method === "CONNECT") return refusals.methodNotAllowed;

  // One pass over the path: segment boundaries, percent-escapes, dot segments. Policy
  // matches the path's bytes as forwarded, so every spelling an upstream could read as the
  // same path must be refused here: an upstream decodes `%61dmin` to `admin`, and Tomcat or
  // Spring drop `;params` from a segment, either of which would walk past a deny rule.
  const length = target.length;
  let queryAt = -1;
  let slugEnd = -1;
  let segmentStart = 1;
  let dots = 0; // dots in the current segment
  let other = false; // the current segment has something besides dots
  for (let i = 1; i < length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === HASH) return refusals.badCharacter;
    if (c === QUESTION) {
      queryAt = i;
      break;
    }
    if (c === SLASH) {
      if (i === segmentStart) return refusals.emptySegment;
      if (!other && (dots === 1 || dots === 2)) return refusals.dotSegment;
      if (slugEnd === -1) slugEnd = i;
      segmentStart = i + 1;
      dots = 0;
      other = false;
      continue;
    }
    if (c === BACKSLASH) return refusals.backslash;
    if (c === SEMICOLON) return refusals.semicolon;
    if (c === PERCENT) {
      const highCode = target.charCodeAt(i + 1);
      const lowCode = target.charCodeAt(i + 2);
      const high = hexValue(highCode);
      const low = hexValue(lowCode);
      if (high < 0 || low < 0) return refusals.badPercent;
      const decoded = high * 16 + low;
      if (decoded === SLASH || decoded === BACKSLASH || decoded === 0) {
        return refusals.encodedSeparator;
      }
      if (decoded === SEMICOLON) return refusals.semicolon;
      // RFC 3986 §6.2.2: escapes use upper-case hex and never encode unreserved characters;
      // anything else is a second spelling of a path that policy would not recognise.
      if (isLowerHexLetter(highCode) || isLowerHexLetter(lowCode) || isUnreserved(decoded)) {
        return refusals.nonCanonicalEscape;
      }
      i += 2;
      other = true;
      continue;
    }
    if (c === DOT) dots++;
    else other = true;
  }
  const pathEnd = queryAt === -1 ? length : queryAt;
  if (pathEnd > segmentStart && !other && (dots === 1 || dots === 2)) return refusals.dotSegment;
  if (queryAt !== -1) {
    for (let i = queryAt + 1; i < length; i++) {
      const c = target.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === HASH) return refusals.badCharacter;
    }
  }
  if (slugEnd === -1) slugEnd = pathEnd;

  if (slugEnd === 1) return refusals.missingUpstream;
  if (target.charCodeAt(1) === 0x5f /* _ */) {
    // Only /_latchkey/healthz and /_latchkey/readyz exist under the reserved prefix.
    const path = target.slice(0, pathEnd);
    if (path === "/_latchkey/healthz") return healthz;
    if (path === "/_latchkey/readyz") return readyz;
    return refusals.notFound;
  }
  const slug = target.slice(1, slugEnd);
  // The policy service's own rule for slugs, so every upstream it accepts is reachable.
  if (!upstreamSlugPattern.test(slug)) return refusals.badSlug;

  // Credential headers and body framing, from the raw headers (Node keeps only the first
  // Authorization in req.headers, so a duplicate is visible only here).
  let authorization: string | undefined;
  let apiKey: string | undefined;
  let credentialHeaders = 0;
  let contentLength = -1;
  let chunked = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    switch (name.length) {
      case 13:
        if (equalsLowerCase(name, "authorization")) {
          credentialHeaders++;
          authorization = value;
        }
        break;
      case 9:
        if (equalsLowerCase(name, "x-api-key")) {
          credentialHeaders++;
          apiKey = value;
        }
        break;
      case 14:
        // Node's parser already refused malformed or conflicting lengths.
        if (equalsLowerCase(name, "content-length")) contentLength = Number(value);
        break;
      case 17:
        if (equalsLowerCase(name, "transfer-encoding")) chunked = true;
        break;
    }
  }
  if (credentialHeaders > 1) return refusals.duplicateCredentials;

  let secret: string | undefined;
  let credentialSource: CredentialSource = "none";
  if (authorization !== undefined) {
    credentialSource = "authorization";
    secret = tokenFromAuthorization(authorization);
  } else if (apiKey !== undefined) {
    credentialSource = "x-api-key";
    secret = apiKey.trim();
  }

  return {
    kind: "proxy",
    slug,
    path: slugEnd === pathEnd ? "/" : target.slice(slugEnd, pathEnd),
    query: queryAt === -1 ? "" : target.slice(queryAt + 1),
    secret,
    credentialSource,
    contentLength: chunked ? -1 : contentLength,
    chunked,
  };
}

/**
 * The token of `Authorization: Bearer lk_...` or `Authorization: token lk_...` (GitHub's
 * spelling, which several SDKs use); the scheme is case-insensitive (RFC 9110 §11.1).
 * Any other scheme yields "" so the request is refused as carrying an invalid token.
 */
function tokenFromAuthorization(value: string): string {
  const space = value.indexOf(" ");
  if (space === -1) return "";
  const scheme = value.slice(0, space).toLowerCase();
  if (scheme !== "bearer" && scheme !== "token") return "";
  return value.slice(space + 1).trim();
}

/** `a`-`f`: RFC 3986 normalizes percent-escapes to upper-case hex digits. */
function isLowerHexLetter(code: number): boolean {
  return code >= 0x61 && code <= 0x66;
}

/** RFC 3986 unreserved characters: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === DOT ||
    code === 0x5f ||
    code === 0x7e
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Whether the request declares a body (Content-Length above 0, or Transfer-Encoding), read
 * from the raw headers: a refused request's unread body is a reason to close its connection.
 */
export function declaresBody(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (equalsLowerCase(name, "transfer-encoding")) return true;
    if (equalsLowerCase(name, "content-length") && rawHeaders[i + 1] !== "0") return true;
  }
  return false;
}
