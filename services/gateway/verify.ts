import { hash } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import {
  type TokenClaims,
  type TokenService,
  VerifyFailure,
  type VerifyTokenResponse,
} from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import {
  parseTokenSecret,
  tokenSecretLength,
  tokenSecretPrefix,
} from "../../libs/token-format/index.ts";
import { type CacheEntry, createBoundedCache, createSingleFlight } from "./cache.ts";
import { ttlMs } from "./durations.ts";
import { errorName } from "./error-name.ts";
import { type Refusal, refusals } from "./refusal.ts";

/** A valid token, as the rest of the request path needs it. Shared between requests: never mutated except `stale`. */
export interface VerifiedToken {
  readonly kind: "token";
  /** `tenants/{tenant}/tokens/{id}`. */
  readonly name: string;
  readonly tenant: string;
  /** Upstream slugs the token may call; empty means any. */
  readonly allowedUpstreams: readonly string[];
  /** When the token (or this secret) stops working; Infinity when never. */
  readonly expireAtMs: number;
  /** What policy sees as `token`, built once per verification rather than per request. */
  readonly policyToken: { id: string; subject: string; attributes: Record<string, string> };
  /** Set when the verdict is served past its TTL because the token service failed. */
  stale: boolean;
}

/** Options for createVerifier. */
export interface VerifierOptions {
  tokenClient: Client<typeof TokenService>;
  log: Logger;
  /** Upper bound on a verdict's cache life, whatever VerifyToken's cache_ttl says. */
  maxTtlMs: number;
  /** Most cached valid verdicts. */
  maxEntries: number;
  /** Most cached refused verdicts (a separate bound, so junk tokens cannot evict valid ones). */
  maxNegativeEntries: number;
  /** How long past its TTL a verdict may stand in while VerifyToken fails (0: never). */
  staleIfErrorMs: number;
  now?: () => number;
}

/** Step 2 of the request path: authenticate the proxy token. */
export interface Verifier {
  /**
   * The verified token, or the refusal to answer. A warm hit returns synchronously; a miss
   * calls VerifyToken once however many requests are waiting for the same secret.
   */
  verify(secret: string | undefined): VerifiedToken | Refusal | Promise<VerifiedToken | Refusal>;
  /** Drops every cached verdict of the token `name` (a change event arrived for it). */
  invalidateToken(name: string): void;
  /** Drops everything. */
  clear(): void;
}

type Verdict = VerifiedToken | Refusal;

const failureRefusals: Record<VerifyFailure, Refusal> = {
  [VerifyFailure.UNSPECIFIED]: refusals.tokenInvalid,
  [VerifyFailure.MALFORMED]: refusals.tokenInvalid,
  [VerifyFailure.NOT_FOUND]: refusals.tokenInvalid,
  [VerifyFailure.EXPIRED]: refusals.tokenExpired,
  [VerifyFailure.REVOKED]: refusals.tokenRevoked,
  [VerifyFailure.ROTATED]: refusals.tokenRotated,
};

/** After a failed reload, how long a stale verdict is used before the next attempt. */
const retryAfterErrorMs = 1_000;

/**
 * Creates the verifier: verdicts (valid and refused) cached by the SHA-256 of the secret,
 * never the secret itself, for min(cache_ttl, maxTtlMs); valid ones indexed by token name
 * so a change event drops them at once.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const { tokenClient, log, maxTtlMs, staleIfErrorMs } = options;
  const now = options.now ?? Date.now;
  /** Token name → cache keys of its secrets (a rotated token has two). */
  const byName = new Map<string, Set<string>>();
  const valid = createBoundedCache<string, VerifiedToken>({
    maxEntries: options.maxEntries,
    onRemove(key, entry) {
      const keys = byName.get(entry.value.name);
      if (keys === undefined) return;
      keys.delete(key);
      if (keys.size === 0) byName.delete(entry.value.name);
    },
  });
  const refused = createBoundedCache<string, Refusal>({ maxEntries: options.maxNegativeEntries });
  const flights = createSingleFlight<string, Verdict>();
  // Bumped by every invalidation: a VerifyToken call that started before one may carry a
  // pre-revocation answer, which is then used once but never cached.
  let epoch = 0;

  function remember(key: string, verdict: Verdict, entry: CacheEntry<Verdict>): void {
    if (verdict.kind === "refusal") {
      refused.set(key, entry as CacheEntry<Refusal>);
      return;
    }
    valid.set(key, entry as CacheEntry<VerifiedToken>);
    let keys = byName.get(verdict.name);
    if (keys === undefined) {
      keys = new Set();
      byName.set(verdict.name, keys);
    }
    keys.add(key);
  }

  async function load(secret: string, key: string, previous: CacheEntry<Verdict> | undefined) {
    const startEpoch = epoch;
    let response: VerifyTokenResponse;
    try {
      response = await tokenClient.verifyToken({ secret });
    } catch (err) {
      const at = now();
      // Stale data is only a fallback for an unchanged token: after an invalidation (a
      // revocation, say) the previous verdict is exactly what must not come back.
      if (previous !== undefined && epoch === startEpoch && at < previous.staleUntil) {
        log.warn({ err: errorName(err) }, "token service failed; using a stale verdict");
        const verdict = previous.value;
        if (verdict.kind === "token") verdict.stale = true;
        const freshUntil = Math.min(at + retryAfterErrorMs, previous.staleUntil);
        remember(key, verdict, { value: verdict, freshUntil, staleUntil: previous.staleUntil });
        return verdict;
      }
      log.warn({ err: errorName(err) }, "token service failed");
      return refusals.tokenServiceUnavailable;
    }
    const verdict = toVerdict(response);
    const ttl = Math.min(ttlMs(response.cacheTtl), maxTtlMs);
    if (ttl > 0 && epoch === startEpoch) {
      const freshUntil = now() + ttl;
      remember(key, verdict, {
        value: verdict,
        freshUntil,
        staleUntil: freshUntil + staleIfErrorMs,
      });
    }
    return verdict;
  }

  return {
    verify(secret) {
      if (secret === undefined) return refusals.tokenMissing;
      // Length and prefix before hashing, so junk of any size costs nothing.
      if (secret.length !== tokenSecretLength || !secret.startsWith(tokenSecretPrefix)) {
        return refusals.tokenInvalid;
      }
      const key = hash("sha256", secret, "base64");
      const entry: CacheEntry<Verdict> | undefined = valid.get(key) ?? refused.get(key);
      const at = now();
      if (entry !== undefined && at < entry.freshUntil) {
        const verdict = entry.value;
        if (verdict.kind === "token" && at >= verdict.expireAtMs) return refusals.tokenExpired;
        return verdict;
      }
      // On a miss, the alphabet and checksum are checked locally before any RPC: a typo or a
      // made-up token never reaches the token service.
      if (entry === undefined && parseTokenSecret(secret) === undefined)
        return refusals.tokenInvalid;
      // Keyed by epoch too: a request arriving after an invalidation never joins a call that
      // started before it and may carry the pre-invalidation answer.
      return flights
        .run(`${epoch}:${key}`, () => load(secret, key, entry))
        .then((verdict) =>
          verdict.kind === "token" && now() >= verdict.expireAtMs ? refusals.tokenExpired : verdict,
        );
    },
    invalidateToken(name) {
      epoch++;
      const keys = byName.get(name);
      if (keys !== undefined) for (const key of [...keys]) valid.delete(key);
      // Refusals carry no token name. A change (an extended expiry, say) may turn one into
      // a valid token, so all of them go: they are cheap to ask again.
      refused.clear();
    },
    clear() {
      epoch++;
      valid.clear();
      refused.clear();
    },
  };
}

function toVerdict(response: VerifyTokenResponse): Verdict {
  const claims = response.claims;
  if (response.failure === VerifyFailure.UNSPECIFIED && claims !== undefined) {
    return toVerifiedToken(claims);
  }
  const refusal = failureRefusals[response.failure] ?? refusals.tokenInvalid;
  // For EXPIRED, REVOKED and ROTATED the token service names the token (token.proto), so
  // the refusal is audited under its tenant. Built once per verification, then cached.
  if (claims === undefined || claims.name === "" || claims.tenant === "") return refusal;
  return { ...refusal, tenant: claims.tenant, tokenName: claims.name };
}

function toVerifiedToken(claims: TokenClaims): VerifiedToken {
  const id = claims.name.slice(claims.name.lastIndexOf("/") + 1);
  return {
    kind: "token",
    name: claims.name,
    tenant: claims.tenant,
    allowedUpstreams: claims.allowedUpstreams,
    expireAtMs: claims.expireTime ? timestampMs(claims.expireTime) : Number.POSITIVE_INFINITY,
    policyToken: { id, subject: claims.subject, attributes: claims.attributes },
    stale: false,
  };
}
