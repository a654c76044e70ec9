import type { Exchange } from "./exchange.ts";
import { type Refusal, refusals } from "./refusal.ts";
import type { UpstreamTarget } from "./resolve-upstream.ts";
import type { VerifiedToken } from "./verify.ts";

/**
 * Step 4 of the request path: the token's own upstream list, then the tenant's policy,
 * evaluated locally from the cached bundle on the canonical path (the bytes that will be
 * forwarded). Records the policy version and matching dry-run rules on the exchange for
 * the audit event, whatever the outcome. Returns undefined when the request may proceed.
 *
 * Every refusal here is the same 403 as an unknown upstream (see refusal.ts).
 */
export function authorize(
  token: VerifiedToken,
  upstream: UpstreamTarget,
  exchange: Exchange,
): Refusal | undefined {
  const allowed = token.allowedUpstreams;
  if (allowed.length > 0 && !allowed.includes(upstream.slug)) return refusals.upstreamNotAllowed;
  const policy = upstream.bundle.policy;
  let result: ReturnType<typeof policy.evaluate>;
  try {
    result = policy.evaluate({
      token: token.policyToken,
      request: exchange,
      upstream: upstream.policyUpstream,
    });
  } catch {
    // The engine promises not to throw on well-formed input; if it ever does, deny.
    return refusals.policyDenied;
  }
  exchange.policyVersion = result.policyVersion;
  exchange.dryRunRuleIds = result.dryRunRuleIds;
  return result.allowed ? undefined : refusals.policyDenied;
}
