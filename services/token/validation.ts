import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../../libs/errors/index.ts";
import { isResourceId } from "../../libs/names/index.ts";

/**
 * Input limits for tokens. Attributes travel with every verified token into the gateway's
 * cache and every policy evaluation, so they are bounded tightly. Messages name the field
 * and the limit, never echo a value (a careless caller may paste a secret anywhere).
 */
export const limits = {
  displayName: 200,
  subject: 256,
  attributeCount: 64,
  attributeKey: 63,
  attributeValue: 256,
  allowedUpstreams: 100,
  requestId: 100,
} as const;

const attributeKeyPattern = /^[a-z0-9_.-]{1,63}$/;

/** Checks display_name: at most 200 characters. */
export function validateDisplayName(displayName: string): string {
  if ([...displayName].length > limits.displayName) {
    throw invalidArgument(`display_name must be at most ${limits.displayName} characters`);
  }
  return displayName;
}

/** Checks subject: at most 256 characters. */
export function validateSubject(subject: string): string {
  if ([...subject].length > limits.subject) {
    throw invalidArgument(`subject must be at most ${limits.subject} characters`);
  }
  return subject;
}

/**
 * Checks attributes: at most 64 keys; keys 1-63 characters of [a-z0-9_.-] (so policy can
 * read them as `token.attributes.key` in CEL); values at most 256 characters.
 */
export function validateAttributes(attributes: Record<string, string>): Record<string, string> {
  const keys = Object.keys(attributes);
  if (keys.length > limits.attributeCount) {
    throw invalidArgument(`attributes must have at most ${limits.attributeCount} keys`);
  }
  for (const key of keys) {
    if (!attributeKeyPattern.test(key)) {
      throw invalidArgument(
        `attribute keys must be 1-${limits.attributeKey} characters of a-z, 0-9, _, . and -`,
      );
    }
    if ([...(attributes[key] ?? "")].length > limits.attributeValue) {
      throw invalidArgument(
        `attribute ${key}: value must be at most ${limits.attributeValue} characters`,
      );
    }
  }
  // A plain object copy: protobuf-es map fields are plain objects, but the copy keeps the
  // stored JSON free of anything but the validated keys.
  return Object.fromEntries(keys.map((k) => [k, attributes[k] ?? ""]));
}

/**
 * Checks allowed_upstreams: upstream slugs, at most 100. Duplicates are dropped (keeping the
 * first occurrence) rather than refused: the set is what matters.
 */
export function validateAllowedUpstreams(upstreams: readonly string[]): string[] {
  if (upstreams.length > limits.allowedUpstreams) {
    throw invalidArgument(`allowed_upstreams must have at most ${limits.allowedUpstreams} slugs`);
  }
  for (const [i, slug] of upstreams.entries()) {
    // Named by position, not value: the value could be anything a caller pasted.
    if (!isResourceId(slug))
      throw invalidArgument(`allowed_upstreams[${i}] is not an upstream slug`);
  }
  return [...new Set(upstreams)];
}

/** Checks an expire_time: it must lie after `now`. */
export function validateExpireTime(expireTime: Timestamp, now: Date): Date {
  const date = timestampDate(expireTime);
  if (Number.isNaN(date.getTime())) throw invalidArgument("expire_time is out of range");
  if (date.getTime() <= now.getTime()) {
    throw invalidArgument("expire_time must be in the future");
  }
  return date;
}

/**
 * The expiry of a new token: token.expire_time, or now + ttl, or none. Setting both is
 * refused rather than one silently winning.
 */
export function resolveExpireTime(
  expireTime: Timestamp | undefined,
  ttl: Duration | undefined,
  now: Date,
): Date | null {
  if (expireTime && ttl) throw invalidArgument("set either ttl or token.expire_time, not both");
  if (expireTime) return validateExpireTime(expireTime, now);
  if (ttl) {
    const ms = durationMs(ttl);
    if (!(ms > 0)) throw invalidArgument("ttl must be positive");
    const date = new Date(now.getTime() + ms);
    if (Number.isNaN(date.getTime())) throw invalidArgument("ttl is out of range");
    return date;
  }
  return null;
}

/** Checks a CreateToken request_id: at most 100 characters; empty means none. */
export function validateRequestId(requestId: string): string | null {
  if (requestId === "") return null;
  if ([...requestId].length > limits.requestId) {
    throw invalidArgument(`request_id must be at most ${limits.requestId} characters`);
  }
  return requestId;
}
