import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { invalidArgument } from "../../../libs/errors/index.ts";
import {
  type BatchEvaluateRequest,
  type BatchEvaluateResponse,
  BatchEvaluateResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decide, maxBatchInputs } from "../decide.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { getUpstreamsBySlug } from "../store.ts";
import { requireEvaluator } from "./access.ts";

/**
 * BatchEvaluate: decides up to 100 requests against one version of the tenant's rule set
 * (all decisions name the same policy_version), one decision per input, in order.
 */
export async function batchEvaluate(
  deps: PolicyServiceDeps,
  req: BatchEvaluateRequest,
  ctx: HandlerContext,
): Promise<BatchEvaluateResponse> {
  const tenant = parseParent(req.parent);
  requireEvaluator(ctx, tenant);
  if (req.inputs.length > maxBatchInputs) {
    throw invalidArgument(`inputs holds at most ${maxBatchInputs} requests`);
  }
  const policy = await deps.policies.current(deps.db, tenant);
  const slugs = [...new Set(req.inputs.map((input) => input.upstream).filter((s) => s !== ""))];
  const rows = await getUpstreamsBySlug(deps.db, tenant, slugs);
  const upstreams = new Map(rows.map((row) => [row.slug, row]));
  const now = deps.clock();
  const decisions = req.inputs.map((input, i) =>
    decide(policy, upstreams, input, now, `inputs[${i}]`),
  );
  return create(BatchEvaluateResponseSchema, { decisions });
}
