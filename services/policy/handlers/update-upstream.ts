import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { DomainError, invalidArgument, notFound } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type UpdateUpstreamRequest,
  type UpdateUpstreamResponse,
  UpdateUpstreamResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { getUpstream, updateUpstream as writeUpstream } from "../store.ts";
import { etagOf, toUpstreamMessage } from "../upstream-message.ts";
import { applyUpdate, checkUpdateMask } from "../upstream-validation.ts";

/**
 * UpdateUpstream: changes the fields named in update_mask and emits an UPDATED change event
 * so gateways reload their bundle. A non-empty etag must match the stored one (optimistic
 * concurrency, AIP-154), else Aborted.
 */
export async function updateUpstream(
  deps: PolicyServiceDeps,
  req: UpdateUpstreamRequest,
  ctx: HandlerContext,
): Promise<UpdateUpstreamResponse> {
  const input = req.upstream;
  if (!input) throw invalidArgument("upstream is required");
  const { tenant, id: slug } = parseName(input.name, "upstreams");
  const principal = requireAdmin(ctx, tenant, "write");
  const mask = checkUpdateMask(req.updateMask?.paths ?? []);
  const now = deps.clock();

  const updated = await deps.db.transaction(async (tx) => {
    const current = await getUpstream(tx, tenant, slug, { forUpdate: true });
    if (!current) throw notFound(`upstream ${input.name} not found`);
    if (input.etag !== "" && input.etag !== etagOf(current.version)) {
      throw new DomainError("aborted", `upstream ${input.name} changed since it was read (etag)`);
    }
    // Validated inside the transaction because applyUpdate needs the current values; a
    // validation error rolls back a transaction that wrote nothing.
    const fields = applyUpdate(tenant, current, input, mask);
    const row = await writeUpstream(tx, tenant, slug, fields, now);
    if (!row) throw new Error("locked upstream vanished during update");
    await enqueueChange(tx, "policy", {
      tenant,
      resource: input.name,
      resourceType: ResourceType.UPSTREAM,
      action: ChangeAction.UPDATED,
      actor: actorOf(principal),
      version: row.version,
    });
    return row;
  });
  deps.kickRelay();
  deps.log.info(
    { name: input.name, fields: [...mask], actor: actorOf(principal) },
    "upstream updated",
  );
  return create(UpdateUpstreamResponseSchema, { upstream: toUpstreamMessage(updated) });
}
