import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import {
  type GetUpstreamRequest,
  type GetUpstreamResponse,
  GetUpstreamResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { getUpstream as readUpstream } from "../store.ts";
import { toUpstreamMessage } from "../upstream-message.ts";

/** GetUpstream: one upstream of a tenant the caller may read. */
export async function getUpstream(
  deps: PolicyServiceDeps,
  req: GetUpstreamRequest,
  ctx: HandlerContext,
): Promise<GetUpstreamResponse> {
  const { tenant, id: slug } = parseName(req.name, "upstreams");
  requireAdmin(ctx, tenant, "read");
  const row = await readUpstream(deps.db, tenant, slug);
  if (!row) throw notFound(`upstream ${req.name} not found`);
  return create(GetUpstreamResponseSchema, { upstream: toUpstreamMessage(row) });
}
