import { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";

/**
 * A request the gateway answers itself instead of forwarding: the HTTP status and JSON
 * error body the client sees, and the decision and reason the audit event records. Every
 * refusal is a module constant with its body encoded once, so refusing costs no
 * allocation (a flood of bad requests must stay cheap).
 */
export interface Refusal {
  readonly kind: "refusal";
  readonly status: number;
  /** `error.code` of the body: stable, machine-readable. */
  readonly code: string;
  /** `error.message` of the body: safe to show, never echoes request data. */
  readonly message: string;
  /** What the audit event records as the gateway's decision. */
  readonly decision: GatewayDecision;
  /** Machine-readable audit reason, e.g. `token_revoked`. */
  readonly reason: string;
  /** The encoded JSON body. */
  readonly body: Buffer;
  /**
   * For a refused token that exists (expired, revoked, rotated): its tenant and resource
   * name, so the refusal is audited under that tenant.
   */
  readonly tenant?: string;
  readonly tokenName?: string;
}

function refusal(
  status: number,
  code: string,
  message: string,
  decision: GatewayDecision,
  reason: string,
): Refusal {
  const body = Buffer.from(JSON.stringify({ error: { code, message } }));
  return { kind: "refusal", status, code, message, decision, reason, body };
}

const { REJECTED, UNAUTHENTICATED, DENIED, FAILED } = GatewayDecision;

const rejected = (reason: string, message: string) =>
  refusal(400, "invalid_request", message, REJECTED, reason);
const unauthenticated = (reason: string, message: string) =>
  refusal(401, "unauthenticated", message, UNAUTHENTICATED, reason);
const unavailable = (reason: string, message: string) =>
  refusal(503, "unavailable", message, FAILED, reason);

/**
 * Tenants must not be able to probe each other's upstreams: an unknown slug, a slug the
 * token may not call and a policy denial are one and the same answer.
 */
const forbiddenBody = (reason: string) => refusal(403, "forbidden", "forbidden", DENIED, reason);

/** Every refusal the gateway can give. */
export const refusals = {
  absoluteForm: rejected("absolute_form", "request target must be a path"),
  targetTooLong: rejected("target_too_long", "request target too long"),
  emptySegment: rejected("empty_segment", "empty path segment"),
  encodedSeparator: rejected("encoded_separator", "encoded slash, backslash or NUL in path"),
  dotSegment: rejected("dot_segment", "dot segment in path"),
  backslash: rejected("backslash", "backslash in path"),
  badPercent: rejected("bad_percent_encoding", "malformed percent-encoding in path"),
  nonCanonicalEscape: rejected(
    "non_canonical_encoding",
    "percent-encoding of an unreserved character, or lower-case hex, in path",
  ),
  semicolon: rejected("semicolon_in_path", "semicolon (path parameters) in path"),
  badCharacter: rejected("bad_character", "invalid character in request target"),
  missingUpstream: rejected("missing_upstream", "path must start with /{upstream}/"),
  badSlug: rejected("bad_upstream_slug", "invalid upstream slug in path"),
  duplicateCredentials: rejected("duplicate_credentials", "more than one credential header"),
  methodNotAllowed: refusal(
    405,
    "method_not_allowed",
    "method not allowed",
    REJECTED,
    "method_not_allowed",
  ),
  notFound: refusal(404, "not_found", "not found", REJECTED, "reserved_path"),
  tokenMissing: unauthenticated("token_missing", "missing proxy token"),
  tokenInvalid: unauthenticated("token_invalid", "invalid token"),
  tokenExpired: unauthenticated("token_expired", "token expired"),
  tokenRevoked: unauthenticated("token_revoked", "token revoked"),
  tokenRotated: unauthenticated("token_rotated", "token rotated"),
  tokenServiceUnavailable: unavailable(
    "token_service_unavailable",
    "token verification unavailable",
  ),
  upstreamUnknown: forbiddenBody("upstream_unknown"),
  upstreamNotAllowed: forbiddenBody("upstream_not_allowed"),
  policyDenied: forbiddenBody("policy_denied"),
  policyUnavailable: unavailable("policy_unavailable", "policy unavailable"),
  credentialUnavailable: unavailable("credential_unavailable", "upstream credential unavailable"),
  bodyTooLarge: refusal(
    413,
    "payload_too_large",
    "request body too large",
    REJECTED,
    "body_too_large",
  ),
  upstreamUnreachable: refusal(
    502,
    "bad_gateway",
    "upstream unreachable",
    FAILED,
    "upstream_unreachable",
  ),
  upstreamTimeout: refusal(
    504,
    "gateway_timeout",
    "upstream timed out",
    FAILED,
    "upstream_timeout",
  ),
  internalError: refusal(500, "internal", "internal error", FAILED, "internal_error"),
} as const;

/** Whether a step's result is a refusal rather than its value. */
export function isRefusal(value: unknown): value is Refusal {
  return (value as Refusal | undefined)?.kind === "refusal";
}
