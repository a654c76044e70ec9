import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { requireGateway } from "../../../libs/auth/principal.ts";
import {
  type GetBundleRequest,
  type GetBundleResponse,
  GetBundleResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { toPolicySetMessage } from "../policy-message.ts";
import { allUpstreams, getPolicySet } from "../store.ts";
import { toUpstreamMessage } from "../upstream-message.ts";

/**
 * GetBundle: everything a gateway needs to decide locally for one tenant: every upstream
 * and the current rule set (version 0 with no rules when none was written), plus how long
 * it may be used. The gateway identity only (and admins with read on every tenant, for
 * debugging the data plane).
 */
export async function getBundle(
  deps: PolicyServiceDeps,
  req: GetBundleRequest,
  ctx: HandlerContext,
): Promise<GetBundleResponse> {
  const tenant = parseParent(req.parent);
  requireGateway(ctx, "read");
  // One repeatable-read snapshot, so a bundle never pairs the upstreams of one moment with
  // the rules of another (e.g. a rule set written between the two reads).
  const { upstreams, policy } = await deps.db.transaction(async (tx) => {
    await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    return { upstreams: await allUpstreams(tx, tenant), policy: await getPolicySet(tx, tenant, 0) };
  });
  return create(GetBundleResponseSchema, {
    upstreams: upstreams.map(toUpstreamMessage),
    policySet: toPolicySetMessage(tenant, policy),
    cacheTtl: durationFromMs(deps.bundleTtlMs),
  });
}
