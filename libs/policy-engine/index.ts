/**
 * The policy engine shared by the policy service (PutPolicySet validation, Evaluate) and the
 * gateway (local decisions from a bundle): rule validation, compilation and evaluation.
 */
export { checkRules, knownMethods, maxRules, upstreamSlugPattern } from "./check-rules.ts";
export { compilePolicy, PolicyCompileError } from "./compile-policy.ts";
export { conditionVariables, maxConditionLength } from "./condition.ts";
export { compileGlobs, globProblem, type PathMatcher } from "./glob.ts";
export type {
  CompiledPolicy,
  EvaluationInput,
  EvaluationResult,
  PolicyInput,
  PolicyRule,
} from "./types.ts";
