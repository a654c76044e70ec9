import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { invalidArgument, notFound } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type RevokeTokenRequest,
  type RevokeTokenResponse,
  RevokeTokenResponseSchema,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { getToken, revokeToken as markRevoked } from "../store.ts";
import { toTokenMessage } from "../token-message.ts";

/** Longest revocation reason kept. */
const maxReasonLength = 500;

/**
 * RevokeToken: marks the token revoked and emits a REVOKED change event in one
 * transaction; gateways drop it from their caches on the event. Revoking a revoked token
 * returns it unchanged and emits nothing.
 */
export async function revokeToken(
  deps: TokenServiceDeps,
  req: RevokeTokenRequest,
  ctx: HandlerContext,
): Promise<RevokeTokenResponse> {
  const { tenant, id } = parseName(req.name, "tokens");
  const principal = requireAdmin(ctx, tenant, "write");
  if ([...req.reason].length > maxReasonLength) {
    throw invalidArgument(`reason must be at most ${maxReasonLength} characters`);
  }
  const now = deps.clock();
  const result = await deps.db.transaction(async (tx) => {
    const revoked = await markRevoked(tx, tenant, id, req.reason, now);
    if (!revoked) {
      const existing = await getToken(tx, tenant, id);
      if (!existing) throw notFound(`token ${req.name} not found`);
      return { row: existing, changed: false };
    }
    await enqueueChange(tx, "token", {
      tenant,
      resource: req.name,
      resourceType: ResourceType.TOKEN,
      action: ChangeAction.REVOKED,
      actor: actorOf(principal),
      version: revoked.version,
      time: now,
    });
    return { row: revoked, changed: true };
  });
  if (result.changed) {
    deps.kickRelay();
    // The reason goes to the log (and the row) only: ChangeEvent has no field for it.
    deps.log.info(
      { name: req.name, actor: actorOf(principal), reason: req.reason },
      "token revoked",
    );
  }
  return create(RevokeTokenResponseSchema, { token: toTokenMessage(result.row) });
}
