import { Effect, RuleMode } from "../gen/latchkey/policy/v1/policy_pb.js";
import { checkRules } from "./check-rules.ts";
import { ConditionBindings, type ConditionProgram, compileCondition } from "./condition.ts";
import { compileGlobs, type PathMatcher } from "./glob.ts";
import type {
  CompiledPolicy,
  EvaluationInput,
  EvaluationResult,
  PolicyInput,
  PolicyRule,
} from "./types.ts";

/** Thrown by {@link compilePolicy} when a rule set does not pass {@link checkRules}. */
export class PolicyCompileError extends Error {
  /** Every problem found, as checkRules reports them. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid policy set: ${problems.join("; ")}`);
    this.name = "PolicyCompileError";
    this.problems = problems;
  }
}

interface CompiledRule {
  readonly id: string;
  readonly deny: boolean;
  /** undefined: every upstream. */
  readonly upstreams: ReadonlySet<string> | undefined;
  /** undefined: every method. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: PathMatcher;
  /** undefined: no condition. */
  readonly condition: ConditionProgram | undefined;
}

function compileRule(rule: PolicyRule): CompiledRule {
  const condition = rule.condition.trim();
  return {
    id: rule.id,
    deny: rule.effect === Effect.DENY,
    upstreams: rule.upstreams.length === 0 ? undefined : new Set(rule.upstreams),
    methods: rule.methods.length === 0 ? undefined : new Set(rule.methods),
    paths: compileGlobs(rule.paths),
    condition: condition === "" ? undefined : compileCondition(condition),
  };
}

/** How one rule answered: no match, a match, or a match because its condition failed. */
const NO = 0;
const YES = 1;
const FAILED_CLOSED = 2;
type RuleOutcome = typeof NO | typeof YES | typeof FAILED_CLOSED;

/**
 * Compiles a rule set once (path globs into one regular expression per rule, conditions
 * parsed, checked and planned) for many evaluations. Throws {@link PolicyCompileError} when
 * the set does not pass {@link checkRules}.
 *
 * Evaluation semantics (DESIGN.md §2):
 * - A rule matches when its upstreams, methods and paths all match (an empty list matches
 *   everything) and its condition, if any, is true.
 * - A matching enforced deny wins; else a matching enforced allow allows; else the request is
 *   denied with the reason "no rule matched" (also for version 0, the empty set).
 * - Dry-run rules are evaluated and reported in `dryRunRuleIds`, never enforced.
 * - A condition that fails at run time (a missing attribute key, a failed conversion, a
 *   non-bool result) does not match for an allow rule, and does match for a deny rule: deny
 *   rules fail closed, so an error can never turn a denial into an allowance. Write
 *   `"team" in token.attributes && token.attributes.team == "x"` to test optional keys.
 * - Path globs are matched against the canonical path (query string ignored); methods are
 *   compared exactly (case-sensitive).
 */
export function compilePolicy(policySet: PolicyInput): CompiledPolicy {
  const problems = checkRules(policySet.rules);
  if (problems.length > 0) throw new PolicyCompileError(problems);
  const version = Number(policySet.version);
  const enforcedDeny: CompiledRule[] = [];
  const enforcedAllow: CompiledRule[] = [];
  const dryRun: CompiledRule[] = [];
  for (const rule of policySet.rules) {
    const compiled = compileRule(rule);
    if (rule.mode === RuleMode.DRY_RUN) dryRun.push(compiled);
    else if (compiled.deny) enforcedDeny.push(compiled);
    else enforcedAllow.push(compiled);
  }

  function evaluate(input: EvaluationInput): EvaluationResult {
    const { request, upstream } = input;
    // Bindings are built at most once per evaluation, and only when a condition needs them.
    let bindings: ConditionBindings | undefined;
    const outcome = (rule: CompiledRule): RuleOutcome => {
      if (rule.upstreams !== undefined && !rule.upstreams.has(upstream.slug)) return NO;
      if (rule.methods !== undefined && !rule.methods.has(request.method)) return NO;
      if (!rule.paths.test(request.path)) return NO;
      if (rule.condition === undefined) return YES;
      bindings ??= new ConditionBindings(input);
      const result = rule.condition(bindings);
      if (result === true) return YES;
      if (result === false) return NO;
      return rule.deny ? FAILED_CLOSED : NO;
    };

    const dryRunRuleIds: string[] = [];
    for (const rule of dryRun) {
      if (outcome(rule) !== NO) dryRunRuleIds.push(rule.id);
    }

    const denied: string[] = [];
    const failedClosed: string[] = [];
    for (const rule of enforcedDeny) {
      const o = outcome(rule);
      if (o === NO) continue;
      denied.push(rule.id);
      if (o === FAILED_CLOSED) failedClosed.push(rule.id);
    }
    if (denied.length > 0) {
      let reason = `denied by ${ruleList(denied)}`;
      if (failedClosed.length > 0) {
        // The CEL error text is not included: it can quote request values (header contents).
        reason += ` (the condition of ${ruleList(failedClosed)} failed to evaluate; deny rules fail closed)`;
      }
      return { allowed: false, ruleIds: denied, dryRunRuleIds, reason, policyVersion: version };
    }

    // Only allow rules are left to decide, so the first match is enough to allow; still
    // collect every matching one so that decisions and audit events name them all.
    const allowed: string[] = [];
    for (const rule of enforcedAllow) {
      if (outcome(rule) === YES) allowed.push(rule.id);
    }
    if (allowed.length > 0) {
      return {
        allowed: true,
        ruleIds: allowed,
        dryRunRuleIds,
        reason: `allowed by ${ruleList(allowed)}`,
        policyVersion: version,
      };
    }
    return {
      allowed: false,
      ruleIds: [],
      dryRunRuleIds,
      reason: version === 0 ? "no rule matched (the tenant has no policy set)" : "no rule matched",
      policyVersion: version,
    };
  }

  return { version, evaluate };
}

function ruleList(ids: readonly string[]): string {
  return ids.length === 1 ? `rule '${ids[0]}'` : `rules ${ids.map((id) => `'${id}'`).join(", ")}`;
}
