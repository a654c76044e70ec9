import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import {
  type ListPolicySetVersionsRequest,
  type ListPolicySetVersionsResponse,
  ListPolicySetVersionsResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { decodePageToken, encodePageToken, pageSize } from "../../../libs/paging/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { parsePolicySetName, toPolicySetMessage } from "../policy-message.ts";
import { listPolicySets } from "../store.ts";

/** ListPolicySetVersions: every stored version with its rules, newest first, paginated. */
export async function listPolicySetVersions(
  deps: PolicyServiceDeps,
  req: ListPolicySetVersionsRequest,
  ctx: HandlerContext,
): Promise<ListPolicySetVersionsResponse> {
  const tenant = parsePolicySetName(req.name);
  requireAdmin(ctx, tenant, "read");
  const limit = pageSize(req.pageSize);
  const cursor = decodePageToken<{ version: number }>(req.pageToken, ["version"]);
  const rows = await listPolicySets(deps.db, tenant, {
    beforeVersion: cursor === undefined ? undefined : Number(cursor.version),
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return create(ListPolicySetVersionsResponseSchema, {
    policySets: page.map((row) => toPolicySetMessage(tenant, row)),
    nextPageToken: rows.length > limit && last ? encodePageToken({ version: last.version }) : "",
  });
}
