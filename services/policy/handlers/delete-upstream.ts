import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type DeleteUpstreamRequest,
  type DeleteUpstreamResponse,
  DeleteUpstreamResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { deleteUpstream as removeUpstream } from "../store.ts";

/**
 * DeleteUpstream: removes the upstream and emits a DELETED change event; gateways stop
 * routing to it once they drop their bundle. Rules naming the slug stay as written (a new
 * upstream with the same slug is governed by them again).
 */
export async function deleteUpstream(
  deps: PolicyServiceDeps,
  req: DeleteUpstreamRequest,
  ctx: HandlerContext,
): Promise<DeleteUpstreamResponse> {
  const { tenant, id: slug } = parseName(req.name, "upstreams");
  const principal = requireAdmin(ctx, tenant, "write");
  await deps.db.transaction(async (tx) => {
    const version = await removeUpstream(tx, tenant, slug);
    if (version === undefined) throw notFound(`upstream ${req.name} not found`);
    await enqueueChange(tx, "policy", {
      tenant,
      resource: req.name,
      resourceType: ResourceType.UPSTREAM,
      action: ChangeAction.DELETED,
      actor: actorOf(principal),
      version,
    });
  });
  deps.kickRelay();
  deps.log.info({ name: req.name, actor: actorOf(principal) }, "upstream deleted");
  return create(DeleteUpstreamResponseSchema, {});
}
