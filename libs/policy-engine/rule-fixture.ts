import { Effect, RuleMode } from "../gen/latchkey/policy/v1/policy_pb.js";
import type { PolicyRule } from "./types.ts";

/** An enforced ALLOW rule matching everything, with `r` on top (tests and bench.ts). */
export const rule = (r: Partial<PolicyRule> & { id: string }): PolicyRule => ({
  effect: Effect.ALLOW,
  upstreams: [],
  methods: [],
  paths: [],
  condition: "",
  mode: RuleMode.ENFORCE,
  ...r,
});
