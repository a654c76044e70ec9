import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../../libs/errors/index.ts";
import {
  type PolicySet,
  PolicySetSchema,
  type Rule,
  RuleSchema,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { isTenantId } from "../../libs/names/index.ts";
import type { PolicySetRow } from "./store.ts";

/** `tenants/{tenant}/policySet`: a singleton resource per tenant (AIP-156). */
export function policySetName(tenant: string): string {
  return `tenants/${tenant}/policySet`;
}

/** Parses `tenants/{tenant}/policySet` and returns the tenant, or throws InvalidArgument. */
export function parsePolicySetName(name: string): string {
  const parts = name.split("/");
  if (
    parts.length !== 3 ||
    parts[0] !== "tenants" ||
    parts[2] !== "policySet" ||
    !isTenantId(parts[1] ?? "")
  ) {
    throw invalidArgument(
      `name must look like tenants/{tenant}/policySet, got ${JSON.stringify(name)}`,
    );
  }
  return parts[1] as string;
}

/** Rules in their stored form: the proto JSON of each Rule (enum names, camelCase fields). */
export function rulesToJson(rules: readonly Rule[]): JsonValue[] {
  return rules.map((rule) => toJson(RuleSchema, rule));
}

/** Rules from their stored form. */
export function rulesFromJson(json: readonly unknown[]): Rule[] {
  return json.map((r) => fromJson(RuleSchema, r as JsonValue));
}

/** Builds the PolicySet message for a stored version, or the empty version 0. */
export function toPolicySetMessage(tenant: string, row: PolicySetRow | undefined): PolicySet {
  if (row === undefined) {
    // A tenant that never wrote a rule set: version 0, no rules, which denies everything.
    return create(PolicySetSchema, { name: policySetName(tenant), version: 0n, rules: [] });
  }
  return create(PolicySetSchema, {
    name: policySetName(tenant),
    version: BigInt(row.version),
    rules: rulesFromJson(row.rules),
    createTime: timestampFromDate(row.createTime),
    author: row.author,
  });
}
