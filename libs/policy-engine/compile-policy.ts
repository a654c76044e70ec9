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
  let hasConditions = false;
  for (const rule of policySet.rules) {
    const compiled = compileRule(rule);
    if (compiled.condition !== undefined) hasConditions = true;
    if (rule.mode === RuleMode.DRY_RUN) dryRun.push(compiled);
    else if (compiled.deny) enforcedDeny.push(compiled);
    else enforcedAllow.push(compiled);
  }

  // The usual answers are built here once rather than per evaluation (the gateway evaluates
  // every request): one allow rule matching with no dry-run rule, and nothing matching.
  const allowedAlone = enforcedAllow.map((rule) => allowedResult([rule.id], none, version));
  const noMatch = result(
    false,
    none,
    none,
    version === 0 ? "no rule matched (the tenant has no policy set)" : "no rule matched",
    version,
  );

  const allowId = (i: number): string => (enforcedAllow[i] as CompiledRule).id;

  function evaluate(input: EvaluationInput): EvaluationResult {
    // Builds the condition inputs only when a condition reads them.
    const bindings = hasConditions ? new ConditionBindings(input) : undefined;

    let dryRunRuleIds: string[] | undefined;
    for (const rule of dryRun) {
      if (outcome(rule, input, bindings) !== NO) dryRunRuleIds = appended(dryRunRuleIds, rule.id);
    }

    let denied: string[] | undefined;
    let failedClosed: string[] | undefined;
    for (const rule of enforcedDeny) {
      const o = outcome(rule, input, bindings);
      if (o === NO) continue;
      denied = appended(denied, rule.id);
      if (o === FAILED_CLOSED) failedClosed = appended(failedClosed, rule.id);
    }
    if (denied !== undefined) {
      let reason = `denied by ${ruleList(denied)}`;
      if (failedClosed !== undefined) {
        // The CEL error text is not included: it can quote request values (header contents).
        reason += ` (the condition of ${ruleList(failedClosed)} failed to evaluate; deny rules fail closed)`;
      }
      return result(false, denied, dryRunRuleIds ?? none, reason, version);
    }

    // Only allow rules are left to decide, so the first match is enough to allow; still
    // collect every matching one so that decisions and audit events name them all.
    let first = -1;
    let allowed: string[] | undefined;
    for (let i = 0; i < enforcedAllow.length; i++) {
      const rule = enforcedAllow[i] as CompiledRule;
      if (outcome(rule, input, bindings) !== YES) continue;
      if (first === -1) first = i;
      else allowed = appended(allowed ?? [allowId(first)], rule.id);
    }
    if (first !== -1) {
      if (allowed === undefined && dryRunRuleIds === undefined) {
        return allowedAlone[first] as EvaluationResult;
      }
      return allowedResult(allowed ?? [allowId(first)], dryRunRuleIds ?? none, version);
    }
    if (dryRunRuleIds === undefined) return noMatch;
    return result(false, none, dryRunRuleIds, noMatch.reason, version);
  }

  return { version, evaluate };
}

const none: readonly string[] = Object.freeze([]);

/** `list` with `id` added; a list is made only for the first id (most evaluations need none). */
function appended(list: string[] | undefined, id: string): string[] {
  if (list === undefined) return [id];
  list.push(id);
  return list;
}

/** A frozen result: the common ones are handed to every evaluation that reaches them. */
function result(
  allowed: boolean,
  ruleIds: readonly string[],
  dryRunRuleIds: readonly string[],
  reason: string,
  policyVersion: number,
): EvaluationResult {
  Object.freeze(ruleIds);
  Object.freeze(dryRunRuleIds);
  return Object.freeze({ allowed, ruleIds, dryRunRuleIds, reason, policyVersion });
}

function allowedResult(
  ruleIds: readonly string[],
  dryRunRuleIds: readonly string[],
  version: number,
): EvaluationResult {
  return result(true, ruleIds, dryRunRuleIds, `allowed by ${ruleList(ruleIds)}`, version);
}

/** How `rule` answers `input`; `bindings` are given when the policy has any condition. */
function outcome(
  rule: CompiledRule,
  input: EvaluationInput,
  bindings: ConditionBindings | undefined,
): RuleOutcome {
  if (rule.upstreams !== undefined && !rule.upstreams.has(input.upstream.slug)) return NO;
  if (rule.methods !== undefined && !rule.methods.has(input.request.method)) return NO;
  if (!rule.paths.test(input.request.path)) return NO;
  if (rule.condition === undefined) return YES;
  const matched = rule.condition(bindings as ConditionBindings);
  if (matched === true) return YES;
  if (matched === false) return NO;
  return rule.deny ? FAILED_CLOSED : NO;
}

function ruleList(ids: readonly string[]): string {
  return ids.length === 1 ? `rule '${ids[0]}'` : `rules ${ids.map((id) => `'${id}'`).join(", ")}`;
}
