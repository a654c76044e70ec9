import { Effect, RuleMode } from "../gen/latchkey/policy/v1/policy_pb.js";
import { conditionProblem } from "./condition.ts";
import { globProblem } from "./glob.ts";
import type { PolicyRule } from "./types.ts";

/** Most rules one set may hold. */
export const maxRules = 1000;
/** Most upstreams, methods or path globs one rule may list. */
export const maxMatchersPerRule = 100;
/** Longest rule description, in characters. */
export const maxDescriptionLength = 1024;

/** Rule ids: `[a-z0-9-_]`, 1-64 characters (policy.proto). */
const ruleIdPattern = /^[a-z0-9_-]{1,64}$/;
/** Upstream slugs, as in CreateUpstream. */
export const upstreamSlugPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * The HTTP methods a rule may name (RFC 9110 §9 and PATCH from RFC 5789). Methods are
 * case-sensitive, so `get` is rejected rather than silently never matching.
 */
export const knownMethods: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "TRACE",
  "CONNECT",
]);

/**
 * Validates a rule set before it is stored and returns every problem found (empty when the
 * set is valid). Each message names the rule (by id, or by position when the id itself is
 * bad) and is safe to return to the author as an InvalidArgument detail.
 *
 * Checked: ids unique and well formed; effect set; mode known; methods upper-case known
 * tokens; path globs well formed; upstream slugs valid; conditions parse and type-check to
 * bool against `token`, `request` and `upstream`.
 */
export function checkRules(rules: readonly PolicyRule[]): string[] {
  const problems: string[] = [];
  if (rules.length > maxRules) {
    problems.push(`a policy set holds at most ${maxRules} rules, got ${rules.length}`);
    return problems;
  }
  const seen = new Set<string>();
  rules.forEach((rule, index) => {
    const label = ruleIdPattern.test(rule.id) ? `rule '${rule.id}'` : `rule #${index + 1}`;
    const add = (problem: string) => problems.push(`${label}: ${problem}`);
    if (!ruleIdPattern.test(rule.id)) {
      add(`id ${JSON.stringify(rule.id)} must be 1-64 characters of a-z, 0-9, - and _`);
    } else if (seen.has(rule.id)) {
      add("id is used by more than one rule");
    }
    seen.add(rule.id);
    if (rule.effect !== Effect.ALLOW && rule.effect !== Effect.DENY) {
      add("effect must be EFFECT_ALLOW or EFFECT_DENY");
    }
    if (
      rule.mode !== RuleMode.UNSPECIFIED &&
      rule.mode !== RuleMode.ENFORCE &&
      rule.mode !== RuleMode.DRY_RUN
    ) {
      add("mode must be RULE_MODE_ENFORCE or RULE_MODE_DRY_RUN");
    }
    if ((rule.description ?? "").length > maxDescriptionLength) {
      add(`description is longer than ${maxDescriptionLength} characters`);
    }
    for (const [field, list] of [
      ["upstreams", rule.upstreams],
      ["methods", rule.methods],
      ["paths", rule.paths],
    ] as const) {
      if (list.length > maxMatchersPerRule) {
        add(`${field} lists more than ${maxMatchersPerRule} entries`);
      }
    }
    for (const slug of rule.upstreams) {
      if (!upstreamSlugPattern.test(slug)) {
        add(`upstream ${JSON.stringify(slug)} is not a valid slug ([a-z0-9][a-z0-9-]{0,62})`);
      }
    }
    for (const method of rule.methods) {
      if (!knownMethods.has(method)) {
        const hint = knownMethods.has(method.toUpperCase())
          ? ` (write ${method.toUpperCase()})`
          : "";
        add(`method ${JSON.stringify(method)} is not a known upper-case HTTP method${hint}`);
      }
    }
    for (const glob of rule.paths) {
      const problem = globProblem(glob);
      if (problem !== undefined) add(`path ${JSON.stringify(glob)} ${problem}`);
    }
    if (rule.condition.trim() !== "") {
      const problem = conditionProblem(rule.condition);
      if (problem !== undefined) add(`condition ${problem}`);
    }
  });
  return problems;
}
