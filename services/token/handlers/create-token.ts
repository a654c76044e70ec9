import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { invalidArgument } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type CreateTokenRequest,
  type CreateTokenResponse,
  CreateTokenResponseSchema,
  TokenSchema,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { newId } from "../../../libs/ids/index.ts";
import { parseParent } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import { generateTokenSecret } from "../../../libs/token-format/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { findTokenByRequestId, insertSecret, insertToken } from "../store.ts";
import { tokenName, toTokenMessage } from "../token-message.ts";
import {
  resolveExpireTime,
  validateAllowedUpstreams,
  validateAttributes,
  validateDisplayName,
  validateRequestId,
  validateSubject,
} from "../validation.ts";

/**
 * CreateToken: validates, then writes the token, its secret's hash and a CREATED change
 * event in one transaction. With a request_id, a retry returns the first token without a
 * secret (the secret exists only in the first response).
 */
export async function createToken(
  deps: TokenServiceDeps,
  req: CreateTokenRequest,
  ctx: HandlerContext,
): Promise<CreateTokenResponse> {
  const tenant = parseParent(req.parent);
  const principal = requireAdmin(ctx, tenant, "write");
  const input = req.token ?? create(TokenSchema);
  if (input.rateLimits.length > 0 || input.quota) {
    throw invalidArgument("rate_limits and quota cannot be set yet: a later release enforces them");
  }
  const now = deps.clock();
  const requestId = validateRequestId(req.requestId);
  const fields = {
    displayName: validateDisplayName(input.displayName),
    subject: validateSubject(input.subject),
    attributes: validateAttributes(input.attributes),
    allowedUpstreams: validateAllowedUpstreams(input.allowedUpstreams),
    expireTime: resolveExpireTime(input.expireTime, req.ttl, now),
  };

  if (requestId) {
    const previous = await findTokenByRequestId(deps.db, tenant, requestId);
    if (previous) return create(CreateTokenResponseSchema, { token: toTokenMessage(previous) });
  }

  const id = newId("token", now.getTime());
  const { secret, displayPrefix } = generateTokenSecret();
  const created = await deps.db.transaction(async (tx) => {
    const row = await insertToken(tx, { tenant, id, ...fields, displayPrefix, requestId, now });
    // No row: a concurrent call with the same request_id committed first (the insert
    // waited for it); nothing of ours was written, so roll nothing back and reuse theirs.
    if (!row) return undefined;
    await insertSecret(tx, {
      hash: deps.hashSecret(secret),
      tenant,
      tokenId: id,
      displayPrefix,
      now,
    });
    await enqueueChange(tx, "token", {
      tenant,
      resource: tokenName(tenant, id),
      resourceType: ResourceType.TOKEN,
      action: ChangeAction.CREATED,
      actor: actorOf(principal),
      version: row.version,
      time: now,
    });
    return row;
  });

  if (!created) {
    const winner = requestId ? await findTokenByRequestId(deps.db, tenant, requestId) : undefined;
    if (!winner) throw new Error("token insert skipped without an idempotency conflict");
    return create(CreateTokenResponseSchema, { token: toTokenMessage(winner) });
  }
  deps.kickRelay();
  deps.log.info(
    { name: tokenName(tenant, id), display_prefix: displayPrefix, actor: actorOf(principal) },
    "token created",
  );
  return create(CreateTokenResponseSchema, { token: toTokenMessage(created), secret });
}
