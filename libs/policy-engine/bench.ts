/**
 * Prints microseconds per policy evaluation for a few typical rule sets (not a test).
 *
 *   cd /work/main && node_modules/.bin/node libs/policy-engine/bench.ts
 */
import { Effect, RuleMode } from "../gen/latchkey/policy/v1/policy_pb.js";
import { compilePolicy } from "./compile-policy.ts";
import { rule } from "./rule-fixture.ts";
import type { EvaluationInput, PolicyRule } from "./types.ts";

const input: EvaluationInput = {
  token: { id: "tok_01", subject: "svc-billing", attributes: { team: "payments", env: "prod" } },
  request: {
    method: "GET",
    path: "/v1/charges/ch_123",
    clientAddress: "10.0.0.7",
    headers: { "user-agent": "bench" },
    time: new Date(),
  },
  upstream: { slug: "stripe", origin: "https://api.stripe.com" },
};

const sets: Record<string, PolicyRule[]> = {
  "matchers only (1 allow)": [rule({ id: "a", upstreams: ["stripe"], paths: ["/v1/**"] })],
  "one condition": [
    rule({
      id: "a",
      upstreams: ["stripe"],
      paths: ["/v1/charges/*"],
      condition: 'token.attributes["team"] == "payments" && request.method in ["GET", "HEAD"]',
    }),
  ],
  "deny + allow + dry-run, 3 conditions": [
    rule({
      id: "no-deletes",
      effect: Effect.DENY,
      methods: ["DELETE"],
    }),
    rule({
      id: "prod-only-from-vpc",
      effect: Effect.DENY,
      condition: 'token.attributes["env"] == "prod" && !request.client_address.startsWith("10.")',
    }),
    rule({
      id: "payments",
      upstreams: ["stripe"],
      paths: ["/v1/**"],
      condition: 'token.attributes["team"] == "payments"',
    }),
    rule({
      id: "office-hours",
      mode: RuleMode.DRY_RUN,
      condition: "request.time.getHours() >= 8",
    }),
  ],
  "50 rules, none matching": Array.from({ length: 50 }, (_, i) =>
    rule({ id: `r${i}`, upstreams: [`up-${i}`], paths: [`/v${i}/**`] }),
  ),
};

const iterations = 200_000;
for (const [name, rules] of Object.entries(sets)) {
  const policy = compilePolicy({ version: 1, rules });
  for (let i = 0; i < 20_000; i++) policy.evaluate(input); // warm up the JIT
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) policy.evaluate(input);
  const micros = Number(process.hrtime.bigint() - start) / 1000 / iterations;
  const decision = policy.evaluate(input);
  console.log(
    `${name.padEnd(40)} ${micros.toFixed(2).padStart(7)} µs/eval  (allowed=${decision.allowed})`,
  );
}
