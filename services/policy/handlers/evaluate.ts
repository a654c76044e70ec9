import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  type EvaluateRequest,
  type EvaluateResponse,
  EvaluateResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decide } from "../decide.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { getUpstreamsBySlug } from "../store.ts";
import { requireEvaluator } from "./access.ts";

/** Evaluate: decides one request against the tenant's current rule set. */
export async function evaluate(
  deps: PolicyServiceDeps,
  req: EvaluateRequest,
  ctx: HandlerContext,
): Promise<EvaluateResponse> {
  const tenant = parseParent(req.parent);
  requireEvaluator(ctx, tenant);
  const policy = await deps.policies.current(deps.db, tenant);
  const slug = req.input?.upstream ?? "";
  const rows = await getUpstreamsBySlug(deps.db, tenant, slug === "" ? [] : [slug]);
  const upstreams = new Map(rows.map((row) => [row.slug, row]));
  const decision = decide(policy, upstreams, req.input, deps.clock());
  return create(EvaluateResponseSchema, { decision });
}
