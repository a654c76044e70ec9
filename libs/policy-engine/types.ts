import type { PolicySet, Rule } from "../gen/latchkey/policy/v1/policy_pb.js";

/**
 * A rule as the engine reads it: the generated `latchkey.policy.v1.Rule` message or any plain
 * object with the same fields (`effect` and `mode` are the generated enum values).
 */
export type PolicyRule = Pick<
  Rule,
  "id" | "effect" | "upstreams" | "methods" | "paths" | "condition" | "mode"
> & { description?: string };

/**
 * A rule set as the engine reads it: the generated `PolicySet` message (from GetBundle or
 * GetPolicySet) or a plain object. `version` is 0 for a tenant that never wrote one.
 */
export interface PolicyInput {
  /** `PolicySet.version` (bigint in the generated message) or a number. */
  version: PolicySet["version"] | number;
  rules: readonly PolicyRule[];
}

/** What the engine knows of one request. */
export interface EvaluationInput {
  /** The calling proxy token. */
  token: { id: string; subject: string; attributes: Record<string, string> };
  /** The HTTP request. */
  request: {
    /** Method as received (HTTP methods are case-sensitive; the gateway passes upper case). */
    method: string;
    /** Canonical path after the upstream slug, starting with `/`: the bytes forwarded. */
    path: string;
    /** Client address as the gateway saw it. */
    clientAddress: string;
    /** Selected request headers, lower-case names. */
    headers: Record<string, string>;
    /** When the request arrived. */
    time: Date;
  };
  /** The upstream the request is for. */
  upstream: { slug: string; origin: string };
}

/** The outcome of one evaluation (mirrors `latchkey.policy.v1.Decision`). */
export interface EvaluationResult {
  /** Allowed or not. */
  readonly allowed: boolean;
  /** The enforced rules that decided: matching denies, else matching allows; else empty. */
  readonly ruleIds: readonly string[];
  /** Dry-run rules that matched (either effect): reported, never enforced. */
  readonly dryRunRuleIds: readonly string[];
  /** Human-readable explanation; never holds request data or secrets. */
  readonly reason: string;
  /** The rule-set version evaluated. */
  readonly policyVersion: number;
}

/** A rule set compiled once (globs and CEL planned) and evaluated many times. */
export interface CompiledPolicy {
  /** The rule-set version. */
  readonly version: number;
  /**
   * Decides one request. Never throws for well-formed input. The result may be shared
   * between evaluations, so it is frozen.
   */
  evaluate(input: EvaluationInput): EvaluationResult;
}
