import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TokenClaimsSchema,
  VerifyFailure,
  type VerifyTokenResponse,
  VerifyTokenResponseSchema,
} from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { VerifyRow } from "./store.ts";
import { tokenName } from "./token-message.ts";

/**
 * How long a gateway may cache each VerifyToken answer, in milliseconds. Change events
 * (revoked, updated) invalidate gateway caches within a second, so these bound staleness
 * only when events are lost; each value follows from whether the answer can change.
 */
export const cacheTtlMs = {
  /** Valid: a minute, and never past the moment the token (or this secret) expires. */
  valid: 60_000,
  /** Malformed: a pure function of the string, it can never change. */
  malformed: 3_600_000,
  /**
   * Not found: short. A well-formed unknown secret cannot become valid in practice (160
   * random bits), but a short negative TTL keeps a gateway's cache from filling with
   * probes and costs one indexed lookup per secret every few seconds.
   */
  notFound: 5_000,
  /** Revoked: permanent, nothing un-revokes a token. */
  revoked: 3_600_000,
  /** Expired: UpdateToken can move expire_time later, so no longer than a valid answer. */
  expired: 60_000,
  /** Rotated away past its grace period: permanent. */
  rotated: 3_600_000,
} as const;

/**
 * A VerifyToken refusal with its cache TTL. For a token that exists (revoked, expired,
 * rotated) the claims carry only its name and tenant, so the gateway can record the
 * refusal in the token's audit trail; nothing a policy decides on is returned.
 */
export function refusal(
  failure: VerifyFailure,
  ttlMs: number,
  row?: Pick<VerifyRow, "tenant" | "id">,
): VerifyTokenResponse {
  return create(VerifyTokenResponseSchema, {
    failure,
    cacheTtl: durationFromMs(ttlMs),
    claims: row
      ? create(TokenClaimsSchema, { name: tokenName(row.tenant, row.id), tenant: row.tenant })
      : undefined,
  });
}

/**
 * Decides VerifyToken's answer from the row found for a well-formed secret's hash. Checks
 * run in order of permanence: revoked, then the token's expiry, then the secret's own
 * expiry after a rotation.
 */
export function verdict(row: VerifyRow | undefined, now: Date): VerifyTokenResponse {
  if (!row) return refusal(VerifyFailure.NOT_FOUND, cacheTtlMs.notFound);
  if (row.state === "revoked") return refusal(VerifyFailure.REVOKED, cacheTtlMs.revoked, row);
  const nowMs = now.getTime();
  if (row.expireTime && row.expireTime.getTime() <= nowMs) {
    return refusal(VerifyFailure.EXPIRED, cacheTtlMs.expired, row);
  }
  if (row.secretExpireTime && row.secretExpireTime.getTime() <= nowMs) {
    return refusal(VerifyFailure.ROTATED, cacheTtlMs.rotated, row);
  }
  // The claims expire when the first of the token and this secret does.
  const ends = [row.expireTime, row.secretExpireTime].filter((d): d is Date => d !== null);
  const expireTime = ends.length > 0 ? new Date(Math.min(...ends.map((d) => d.getTime()))) : null;
  const ttl = expireTime
    ? Math.min(cacheTtlMs.valid, expireTime.getTime() - nowMs)
    : cacheTtlMs.valid;
  return create(VerifyTokenResponseSchema, {
    failure: VerifyFailure.UNSPECIFIED,
    claims: create(TokenClaimsSchema, {
      name: tokenName(row.tenant, row.id),
      tenant: row.tenant,
      subject: row.subject,
      attributes: row.attributes,
      allowedUpstreams: row.allowedUpstreams,
      expireTime: expireTime ? timestampFromDate(expireTime) : undefined,
    }),
    cacheTtl: durationFromMs(ttl),
  });
}
