import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import {
  DomainError,
  failedPrecondition,
  invalidArgument,
  notFound,
} from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type UpdateTokenRequest,
  type UpdateTokenResponse,
  UpdateTokenResponseSchema,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { getToken, type TokenChanges, updateToken as writeToken } from "../store.ts";
import { etagOf, toTokenMessage } from "../token-message.ts";
import {
  validateAllowedUpstreams,
  validateAttributes,
  validateDisplayName,
  validateExpireTime,
  validateSubject,
} from "../validation.ts";

/** Field-mask paths UpdateToken accepts. */
export const updatablePaths = [
  "display_name",
  "subject",
  "attributes",
  "allowed_upstreams",
  "expire_time",
] as const;

type UpdatablePath = (typeof updatablePaths)[number];

function checkMask(paths: readonly string[]): Set<UpdatablePath> {
  // An empty mask is refused rather than read as "every field" (AIP-134 allows either):
  // a client that forgets the mask should not wipe attributes or the expiry by accident.
  if (paths.length === 0) {
    throw invalidArgument(`update_mask must name fields to change: ${updatablePaths.join(", ")}`);
  }
  const set = new Set<UpdatablePath>();
  for (const [i, path] of paths.entries()) {
    if (path === "rate_limits" || path === "quota") {
      throw invalidArgument(`${path} cannot be set yet: a later release enforces it`);
    }
    if (!(updatablePaths as readonly string[]).includes(path)) {
      throw invalidArgument(`update_mask.paths[${i}] is not one of ${updatablePaths.join(", ")}`);
    }
    set.add(path as UpdatablePath);
  }
  return set;
}

/**
 * UpdateToken: changes the fields named in update_mask of an active token and emits an
 * UPDATED change event, so gateways drop cached claims. A revoked token is final.
 * A non-empty etag must match the stored one (optimistic concurrency, AIP-154).
 */
export async function updateToken(
  deps: TokenServiceDeps,
  req: UpdateTokenRequest,
  ctx: HandlerContext,
): Promise<UpdateTokenResponse> {
  const input = req.token;
  if (!input) throw invalidArgument("token is required");
  const { tenant, id } = parseName(input.name, "tokens");
  const principal = requireAdmin(ctx, tenant, "write");
  const mask = checkMask(req.updateMask?.paths ?? []);
  const now = deps.clock();
  // Validate every named field before taking a row lock.
  const values: Partial<TokenChanges> = {};
  if (mask.has("display_name")) values.displayName = validateDisplayName(input.displayName);
  if (mask.has("subject")) values.subject = validateSubject(input.subject);
  if (mask.has("attributes")) values.attributes = validateAttributes(input.attributes);
  if (mask.has("allowed_upstreams")) {
    values.allowedUpstreams = validateAllowedUpstreams(input.allowedUpstreams);
  }
  if (mask.has("expire_time")) {
    // Named but unset clears the expiry. A past time is refused: revoke ends a token.
    values.expireTime = input.expireTime ? validateExpireTime(input.expireTime, now) : null;
  }

  const updated = await deps.db.transaction(async (tx) => {
    const current = await getToken(tx, tenant, id, { forUpdate: true });
    if (!current) throw notFound(`token ${input.name} not found`);
    if (current.state === "revoked") {
      throw failedPrecondition(`token ${input.name} is revoked and cannot be updated`);
    }
    if (input.etag !== "" && input.etag !== etagOf(current.version)) {
      throw new DomainError("aborted", `token ${input.name} changed since it was read (etag)`);
    }
    const row = await writeToken(tx, tenant, id, { ...current, ...values }, now);
    if (!row) throw new Error("locked active token vanished during update");
    await enqueueChange(tx, "token", {
      tenant,
      resource: input.name,
      resourceType: ResourceType.TOKEN,
      action: ChangeAction.UPDATED,
      actor: actorOf(principal),
      version: row.version,
      time: now,
    });
    return row;
  });
  deps.kickRelay();
  return create(UpdateTokenResponseSchema, { token: toTokenMessage(updated) });
}
