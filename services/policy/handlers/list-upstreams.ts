import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import {
  type ListUpstreamsRequest,
  type ListUpstreamsResponse,
  ListUpstreamsResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decodePageToken, encodePageToken, pageSize } from "../../../libs/paging/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { listUpstreams as readUpstreams } from "../store.ts";
import { toUpstreamMessage } from "../upstream-message.ts";

/** ListUpstreams: a tenant's upstreams by slug, keyset-paginated. */
export async function listUpstreams(
  deps: PolicyServiceDeps,
  req: ListUpstreamsRequest,
  ctx: HandlerContext,
): Promise<ListUpstreamsResponse> {
  const tenant = parseParent(req.parent);
  requireAdmin(ctx, tenant, "read");
  const limit = pageSize(req.pageSize);
  const cursor = decodePageToken<{ slug: string }>(req.pageToken, ["slug"]);
  // One extra row tells whether another page follows without a second query.
  const rows = await readUpstreams(deps.db, tenant, { afterSlug: cursor?.slug, limit: limit + 1 });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return create(ListUpstreamsResponseSchema, {
    upstreams: page.map(toUpstreamMessage),
    nextPageToken: rows.length > limit && last ? encodePageToken({ slug: last.slug }) : "",
  });
}
