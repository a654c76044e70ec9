import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { alreadyExists } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type CreateUpstreamRequest,
  type CreateUpstreamResponse,
  CreateUpstreamResponseSchema,
  UpstreamSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { findUpstreamByRequestId, insertUpstream } from "../store.ts";
import { toUpstreamMessage, upstreamName } from "../upstream-message.ts";
import { validateRequestId, validateSlug, validateUpstreamFields } from "../upstream-validation.ts";

/**
 * CreateUpstream: validates and normalizes the settings, then writes the upstream and a
 * CREATED change event in one transaction. A retry with the same request_id returns the
 * first upstream; a slug already taken in the tenant is AlreadyExists.
 */
export async function createUpstream(
  deps: PolicyServiceDeps,
  req: CreateUpstreamRequest,
  ctx: HandlerContext,
): Promise<CreateUpstreamResponse> {
  const tenant = parseParent(req.parent);
  const principal = requireAdmin(ctx, tenant, "write");
  const slug = validateSlug(req.upstreamId);
  const requestId = validateRequestId(req.requestId);
  const fields = validateUpstreamFields(tenant, req.upstream ?? create(UpstreamSchema));

  if (requestId) {
    const previous = await findUpstreamByRequestId(deps.db, tenant, requestId);
    if (previous)
      return create(CreateUpstreamResponseSchema, { upstream: toUpstreamMessage(previous) });
  }

  const now = deps.clock();
  const name = upstreamName(tenant, slug);
  const created = await deps.db.transaction(async (tx) => {
    const row = await insertUpstream(tx, { tenant, slug, requestId, now, ...fields });
    // No row: the slug or the request_id is taken (a concurrent retry may have won).
    if (!row) return undefined;
    await enqueueChange(tx, "policy", {
      tenant,
      resource: name,
      resourceType: ResourceType.UPSTREAM,
      action: ChangeAction.CREATED,
      actor: actorOf(principal),
      version: row.version,
    });
    return row;
  });

  if (!created) {
    const winner = requestId
      ? await findUpstreamByRequestId(deps.db, tenant, requestId)
      : undefined;
    if (winner)
      return create(CreateUpstreamResponseSchema, { upstream: toUpstreamMessage(winner) });
    throw alreadyExists(`upstream ${name} already exists`);
  }
  deps.kickRelay();
  deps.log.info({ name, origin: created.origin, actor: actorOf(principal) }, "upstream created");
  return create(CreateUpstreamResponseSchema, { upstream: toUpstreamMessage(created) });
}
