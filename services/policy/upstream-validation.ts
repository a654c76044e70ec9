/**
 * Validation and normalization of upstream settings. Every function returns the stored form
 * or throws a DomainError whose message names the field and the rule broken.
 */
import type { Duration } from "@bufbuild/protobuf/wkt";
import { DomainError, failedPrecondition, invalidArgument } from "../../libs/errors/index.ts";
import { AuditMode, type Upstream } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { isResourceId } from "../../libs/names/index.ts";
import type { AuditModeValue, UpstreamFields } from "./store.ts";

/** Upstream slugs: the first path segment on the gateway, so DNS-label-like and lower-case. */
export const slugPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Default time allowed for an upstream exchange until response headers. */
export const defaultRequestTimeoutMs = 30_000;
/** Bounds of request_timeout. */
export const minRequestTimeoutMs = 1;
export const maxRequestTimeoutMs = 5 * 60_000;
/** Default and maximum request body size. */
export const defaultMaxRequestBodyBytes = 10 * 1024 * 1024;
export const maxMaxRequestBodyBytes = 1024 * 1024 * 1024;

const maxDisplayNameLength = 200;
const maxOriginLength = 2048;
const maxBasePathLength = 1024;

/** Validates an upstream slug. */
export function validateSlug(slug: string, field = "upstream_id"): string {
  if (!slugPattern.test(slug)) {
    throw invalidArgument(
      `${field} must be 1-63 characters of a-z, 0-9 and -, starting with a letter or digit`,
    );
  }
  return slug;
}

/** Validates a display name: at most 200 characters, no control characters. */
export function validateDisplayName(name: string): string {
  if (name.length > maxDisplayNameLength) {
    throw invalidArgument(`display_name must be at most ${maxDisplayNameLength} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw invalidArgument("display_name must not contain control characters");
  }
  return name;
}

/**
 * Validates and normalizes an origin to `scheme://host[:port]`: http or https only, no
 * userinfo, path, query or fragment (a lone trailing `/` is dropped), scheme and host
 * lower-cased (IDN hosts in punycode), the scheme's default port dropped. The gateway sends
 * requests only there, so an origin carrying anything else is refused rather than trimmed:
 * `https://api.example.com/v1` is a base path mistaken for an origin.
 */
export function normalizeOrigin(input: string): string {
  if (input === "") throw invalidArgument("origin is required, e.g. https://api.example.com");
  if (input.length > maxOriginLength) {
    throw invalidArgument(`origin must be at most ${maxOriginLength} characters`);
  }
  const shape = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(input);
  if (!shape) {
    throw invalidArgument("origin must be an absolute http(s) URL such as https://api.example.com");
  }
  const [, scheme = "", authority = "", rest = ""] = shape;
  const lowerScheme = scheme.toLowerCase();
  if (lowerScheme !== "http" && lowerScheme !== "https") {
    throw invalidArgument("origin must use http or https");
  }
  if (authority.includes("@")) {
    // Never echo the input: userinfo is a password more often than not.
    throw invalidArgument(
      "origin must not contain user info (user:password@); store secrets in a credential",
    );
  }
  if (rest !== "" && rest !== "/") {
    throw invalidArgument(
      "origin must not have a path, query or fragment; put a path prefix in base_path",
    );
  }
  if (authority === "" || /[\s\\]/.test(authority)) {
    throw invalidArgument("origin must name a host");
  }
  let url: URL;
  try {
    url = new URL(`${lowerScheme}://${authority}/`);
  } catch {
    throw invalidArgument("origin has an invalid host or port");
  }
  if (url.hostname === "") throw invalidArgument("origin must name a host");
  // URL already lower-cases the host and drops the scheme's default port (`:443` for https).
  return `${url.protocol}//${url.host}`;
}

/**
 * Validates a base path: empty, or `/` followed by segments, without `.`/`..` segments,
 * empty segments (`//`), `?`, `#`, backslashes, whitespace, encoded slashes, backslashes or
 * NUL (`%2F`, `%5C`, `%00`: an upstream may decode them into path structure) and malformed
 * percent-encoding. A trailing `/` is dropped, so that base path + client path never holds
 * `//`; `/` alone becomes empty.
 */
export function normalizeBasePath(input: string): string {
  if (input === "" || input === "/") return "";
  if (input.length > maxBasePathLength) {
    throw invalidArgument(`base_path must be at most ${maxBasePathLength} characters`);
  }
  if (!input.startsWith("/")) throw invalidArgument("base_path must be empty or start with /");
  const path = input.endsWith("/") ? input.slice(0, -1) : input;
  if (/[?#]/.test(path)) throw invalidArgument("base_path must not contain ? or #");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\s\\\u0000-\u001f\u007f]/.test(path)) {
    throw invalidArgument("base_path must not contain whitespace, control characters or \\");
  }
  if (/%(2f|5c|00)/i.test(path)) {
    throw invalidArgument("base_path must not contain encoded slashes, backslashes or NUL");
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(path)) {
    throw invalidArgument("base_path has a malformed percent-encoding");
  }
  for (const segment of path.slice(1).split("/")) {
    if (segment === "") throw invalidArgument("base_path must not contain //");
    if (segment === "." || segment === "..") {
      throw invalidArgument("base_path must not contain . or .. segments");
    }
  }
  return path;
}

/**
 * Validates a credential reference: empty (no credential), or
 * `tenants/{tenant}/credentials/{id}` in the upstream's own tenant: a tenant can never
 * make the gateway inject another tenant's secret.
 */
export function validateCredential(credential: string, tenant: string): string {
  if (credential === "") return "";
  const parts = credential.split("/");
  if (
    parts.length !== 4 ||
    parts[0] !== "tenants" ||
    parts[2] !== "credentials" ||
    !isResourceId(parts[3] ?? "")
  ) {
    throw invalidArgument(
      "credential must be empty or look like tenants/{tenant}/credentials/{id}",
    );
  }
  if (parts[1] !== tenant) {
    throw invalidArgument(`credential must belong to tenant ${tenant}`);
  }
  return credential;
}

/** Validates request_timeout (1 ms to 5 min; unset → 30 s) and returns milliseconds. */
export function resolveRequestTimeout(duration: Duration | undefined): number {
  if (duration === undefined) return defaultRequestTimeoutMs;
  const seconds = Number(duration.seconds);
  if (seconds < 0 || duration.nanos < 0) {
    throw invalidArgument("request_timeout must not be negative");
  }
  // Whole milliseconds are stored; finer precision means nothing to a network timeout.
  const ms = Math.floor(seconds * 1000 + duration.nanos / 1_000_000);
  if (ms < minRequestTimeoutMs || ms > maxRequestTimeoutMs) {
    throw invalidArgument("request_timeout must be between 1ms and 5m");
  }
  return ms;
}

/** Validates max_request_body_bytes (0 → 10 MiB; at most 1 GiB). */
export function resolveMaxRequestBodyBytes(value: bigint): number {
  if (value < 0n) throw invalidArgument("max_request_body_bytes must not be negative");
  if (value === 0n) return defaultMaxRequestBodyBytes;
  if (value > BigInt(maxMaxRequestBodyBytes)) {
    throw invalidArgument(
      `max_request_body_bytes must be at most ${maxMaxRequestBodyBytes} (1 GiB)`,
    );
  }
  return Number(value);
}

/**
 * Validates audit_mode (unset → async). SYNC is refused, not stored: the gateway does not
 * wait for the audit acknowledgement yet, and accepting it would promise a guarantee that
 * does not hold.
 */
export function resolveAuditMode(mode: AuditMode): AuditModeValue {
  switch (mode) {
    case AuditMode.UNSPECIFIED:
    case AuditMode.ASYNC:
      return "async";
    case AuditMode.SYNC:
      throw failedPrecondition("sync audit mode is not available yet");
    default:
      throw invalidArgument("audit_mode must be AUDIT_MODE_ASYNC");
  }
}

/** Validates a CreateUpstream request_id: empty, or 1-128 printable ASCII characters. */
export function validateRequestId(requestId: string): string | null {
  if (requestId === "") return null;
  if (requestId.length > 128 || !/^[\x21-\x7e]+$/.test(requestId)) {
    throw new DomainError(
      "invalid_argument",
      "request_id must be 1-128 printable ASCII characters",
    );
  }
  return requestId;
}

/**
 * Validates every settable field of an upstream (CreateUpstream) in the tenant it belongs
 * to, applying defaults for unset ones.
 */
export function validateUpstreamFields(tenant: string, input: Upstream): UpstreamFields {
  return {
    displayName: validateDisplayName(input.displayName),
    origin: normalizeOrigin(input.origin),
    basePath: normalizeBasePath(input.basePath),
    credential: validateCredential(input.credential, tenant),
    requestTimeoutMs: resolveRequestTimeout(input.requestTimeout),
    maxRequestBodyBytes: resolveMaxRequestBodyBytes(input.maxRequestBodyBytes),
    auditMode: resolveAuditMode(input.auditMode),
    forwardCookies: input.forwardCookies,
  };
}

/** Field-mask paths UpdateUpstream accepts (policy.proto). */
export const updatablePaths = [
  "display_name",
  "origin",
  "base_path",
  "credential",
  "request_timeout",
  "max_request_body_bytes",
  "audit_mode",
  "forward_cookies",
] as const;

/** One of {@link updatablePaths}. */
export type UpdatablePath = (typeof updatablePaths)[number];

/**
 * Validates an update mask. An empty mask is refused rather than read as "every field"
 * (AIP-134 allows either): a client that forgets it should not reset timeouts by accident.
 */
export function checkUpdateMask(paths: readonly string[]): Set<UpdatablePath> {
  if (paths.length === 0) {
    throw invalidArgument(`update_mask must name fields to change: ${updatablePaths.join(", ")}`);
  }
  const set = new Set<UpdatablePath>();
  for (const [i, path] of paths.entries()) {
    if (!(updatablePaths as readonly string[]).includes(path)) {
      throw invalidArgument(`update_mask.paths[${i}] is not one of ${updatablePaths.join(", ")}`);
    }
    set.add(path as UpdatablePath);
  }
  return set;
}

/**
 * Applies the masked fields of `input` onto `current`, validating each; unmasked fields keep
 * their stored value. A masked field left unset takes its default (e.g. request_timeout).
 */
export function applyUpdate(
  tenant: string,
  current: UpstreamFields,
  input: Upstream,
  mask: ReadonlySet<UpdatablePath>,
): UpstreamFields {
  const next = { ...current };
  if (mask.has("display_name")) next.displayName = validateDisplayName(input.displayName);
  if (mask.has("origin")) next.origin = normalizeOrigin(input.origin);
  if (mask.has("base_path")) next.basePath = normalizeBasePath(input.basePath);
  if (mask.has("credential")) next.credential = validateCredential(input.credential, tenant);
  if (mask.has("request_timeout"))
    next.requestTimeoutMs = resolveRequestTimeout(input.requestTimeout);
  if (mask.has("max_request_body_bytes")) {
    next.maxRequestBodyBytes = resolveMaxRequestBodyBytes(input.maxRequestBodyBytes);
  }
  if (mask.has("audit_mode")) next.auditMode = resolveAuditMode(input.auditMode);
  if (mask.has("forward_cookies")) next.forwardCookies = input.forwardCookies;
  return next;
}
