import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import { invalidArgument } from "../../../libs/errors/index.ts";
import {
  type ListTokensRequest,
  type ListTokensResponse,
  ListTokensResponseSchema,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decodePageToken, encodePageToken, pageSize } from "../../../libs/paging/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { listTokens as selectTokens } from "../store.ts";
import { toTokenMessage } from "../token-message.ts";

/**
 * The keyset cursor: the last id returned, plus the filters it was issued for. AIP-158 asks
 * that a page token be used with the request that produced it; checking the filters turns
 * a mixed-up token into a clear error instead of a silently wrong page.
 */
type Cursor = { id: string; subject: string; revoked: number };

/** ListTokens: a tenant's tokens, newest first, by keyset pagination on the id. */
export async function listTokens(
  deps: TokenServiceDeps,
  req: ListTokensRequest,
  ctx: HandlerContext,
): Promise<ListTokensResponse> {
  const tenant = parseParent(req.parent);
  requireAdmin(ctx, tenant, "read");
  const size = pageSize(req.pageSize);
  const revoked = req.showRevoked ? 1 : 0;
  const cursor = decodePageToken<Cursor>(req.pageToken, ["id", "subject", "revoked"]);
  if (
    cursor &&
    (typeof cursor.id !== "string" || cursor.subject !== req.subject || cursor.revoked !== revoked)
  ) {
    throw invalidArgument("page_token was issued for a request with other filters");
  }
  // One row more than the page tells whether another page follows.
  const rows = await selectTokens(deps.db, tenant, {
    beforeId: cursor?.id,
    showRevoked: req.showRevoked,
    subject: req.subject === "" ? undefined : req.subject,
    limit: size + 1,
  });
  const page = rows.slice(0, size);
  const last = page.at(-1);
  const nextPageToken =
    rows.length > size && last
      ? encodePageToken({ id: last.id, subject: req.subject, revoked } satisfies Cursor)
      : "";
  return create(ListTokensResponseSchema, { tokens: page.map(toTokenMessage), nextPageToken });
}
