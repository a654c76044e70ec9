import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import type { Queryable } from "../../../libs/db/types.ts";
import {
  type ListEventsRequest,
  type ListEventsResponse,
  ListEventsResponseSchema,
} from "../../../libs/gen/latchkey/audit/v1/audit_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decodePageToken, encodePageToken, pageSize } from "../../../libs/paging/index.ts";
import { parseFilter } from "../event-filter.ts";
import { rowEvent } from "../event-row.ts";
import { listEvents } from "../store.ts";

/** ListEvents page sizes: 100 by default, 1000 at most. */
export const listEventsPaging = { defaultSize: 100, max: 1000 } as const;

/** Creates the ListEvents handler: a tenant's events newest first, filtered, keyset-paged. */
export function createListEvents(deps: { db: Queryable }) {
  return async (req: ListEventsRequest, ctx: HandlerContext): Promise<ListEventsResponse> => {
    const tenant = parseParent(req.parent, { allowUnknownTenant: true });
    requireAdmin(ctx, tenant, "audit");
    const selection = parseFilter(req.filter);
    const limit = pageSize(req.pageSize, listEventsPaging.defaultSize, listEventsPaging.max);
    const cursor = decodePageToken<{ before: string }>(req.pageToken, ["before"]);
    // One row more than asked tells whether another page exists without a count query.
    const rows = await listEvents(deps.db, tenant, selection, {
      beforeId: cursor === undefined ? undefined : String(cursor.before),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return create(ListEventsResponseSchema, {
      events: page.map((r) => rowEvent(r.event)),
      nextPageToken: rows.length > limit && last ? encodePageToken({ before: last.id }) : "",
    });
  };
}
