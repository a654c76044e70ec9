import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../../libs/errors/index.ts";
import {
  type Decision,
  DecisionSchema,
  type EvaluationInput,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { CompiledPolicy } from "../../libs/policy-engine/index.ts";
import type { UpstreamRow } from "./store.ts";

/** Most inputs one BatchEvaluate may carry (policy.proto). */
export const maxBatchInputs = 100;

/** The reason given for an upstream the tenant does not have. */
export const unknownUpstreamReason = "unknown upstream";

/**
 * Decides one input against a tenant's compiled rule set and its upstreams (by slug).
 * Throws InvalidArgument for a malformed input, naming `field` (e.g. `inputs[2]`).
 *
 * An upstream slug the tenant does not have is denied with the reason "unknown upstream"
 * and no rule ids, whatever the rules say: the same answer a gateway gives for an upstream
 * that exists elsewhere, so a tenant cannot probe another's slugs.
 */
export function decide(
  policy: CompiledPolicy,
  upstreams: ReadonlyMap<string, UpstreamRow>,
  input: EvaluationInput | undefined,
  now: Date,
  field = "input",
): Decision {
  if (!input) throw invalidArgument(`${field} is required`);
  const request = input.request;
  if (!request) throw invalidArgument(`${field}.request is required`);
  if (request.method === "") throw invalidArgument(`${field}.request.method is required`);
  if (!request.path.startsWith("/")) {
    throw invalidArgument(`${field}.request.path must start with /`);
  }
  const upstream = upstreams.get(input.upstream);
  if (!upstream) {
    return create(DecisionSchema, {
      allowed: false,
      reason: unknownUpstreamReason,
      policyVersion: BigInt(policy.version),
    });
  }
  const result = policy.evaluate({
    token: {
      id: input.token?.id ?? "",
      subject: input.token?.subject ?? "",
      attributes: input.token?.attributes ?? {},
    },
    request: {
      method: request.method,
      path: request.path,
      clientAddress: request.clientAddress,
      headers: request.headers,
      time: request.time ? timestampDate(request.time) : now,
    },
    upstream: { slug: upstream.slug, origin: upstream.origin },
  });
  return create(DecisionSchema, {
    allowed: result.allowed,
    // Copies: the result is shared and frozen (compile-policy.ts); a message owns its arrays.
    ruleIds: [...result.ruleIds],
    dryRunRuleIds: [...result.dryRunRuleIds],
    reason: result.reason,
    policyVersion: BigInt(result.policyVersion),
  });
}
