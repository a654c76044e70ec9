import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import {
  type GetTokenRequest,
  type GetTokenResponse,
  GetTokenResponseSchema,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { getToken as selectToken } from "../store.ts";
import { toTokenMessage } from "../token-message.ts";

/** GetToken: one token's metadata, looked up inside the tenant named in `name`. */
export async function getToken(
  deps: TokenServiceDeps,
  req: GetTokenRequest,
  ctx: HandlerContext,
): Promise<GetTokenResponse> {
  const { tenant, id } = parseName(req.name, "tokens");
  requireAdmin(ctx, tenant, "read");
  const row = await selectToken(deps.db, tenant, id);
  if (!row) throw notFound(`token ${req.name} not found`);
  return create(GetTokenResponseSchema, { token: toTokenMessage(row) });
}
