import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import { invalidArgument, notFound } from "../../../libs/errors/index.ts";
import {
  type GetPolicySetRequest,
  type GetPolicySetResponse,
  GetPolicySetResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { PolicyServiceDeps } from "../deps.ts";
import { parsePolicySetName, toPolicySetMessage } from "../policy-message.ts";
import { getPolicySet as readPolicySet } from "../store.ts";

/**
 * GetPolicySet: the current version (version 0 in the request), or the one asked for.
 * A tenant that never wrote a rule set gets version 0 with no rules; an unknown non-zero
 * version is NotFound.
 */
export async function getPolicySet(
  deps: PolicyServiceDeps,
  req: GetPolicySetRequest,
  ctx: HandlerContext,
): Promise<GetPolicySetResponse> {
  const tenant = parsePolicySetName(req.name);
  requireAdmin(ctx, tenant, "read");
  if (req.version < 0n) throw invalidArgument("version must not be negative");
  const version = Number(req.version);
  const row = await readPolicySet(deps.db, tenant, version);
  if (!row && version !== 0) throw notFound(`version ${version} of ${req.name} not found`);
  return create(GetPolicySetResponseSchema, { policySet: toPolicySetMessage(tenant, row) });
}
