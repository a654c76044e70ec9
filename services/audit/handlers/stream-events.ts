import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import type { Bus } from "../../../libs/bus/types.ts";
import {
  type StreamEventsRequest,
  type StreamEventsResponse,
  StreamEventsResponseSchema,
} from "../../../libs/gen/latchkey/audit/v1/audit_pb.js";
import type { Logger } from "../../../libs/log/index.ts";
import { parseParent } from "../../../libs/names/index.ts";
import { parseFilter } from "../event-filter.ts";
import { tailEvents } from "../live-tail.ts";

/** Options for createStreamEvents. */
export interface StreamEventsDeps {
  bus: Bus;
  log: Logger;
  /** Events buffered per call for a slow client before it is cut off (ResourceExhausted). */
  maxBuffered: number;
  /** The signal aborted when the component stops: open tails end with Unavailable. */
  shutdown: () => AbortSignal;
}

/** Creates the StreamEvents handler: a live tail of a tenant's events until the client cancels. */
export function createStreamEvents(deps: StreamEventsDeps) {
  return async function* streamEvents(
    req: StreamEventsRequest,
    ctx: HandlerContext,
  ): AsyncGenerator<StreamEventsResponse> {
    const tenant = parseParent(req.parent, { allowUnknownTenant: true });
    requireAdmin(ctx, tenant, "audit");
    const selection = parseFilter(req.filter);
    for await (const event of tailEvents({
      bus: deps.bus,
      log: deps.log,
      tenant,
      selection,
      signal: ctx.signal,
      shutdown: deps.shutdown(),
      maxBuffered: deps.maxBuffered,
    })) {
      yield create(StreamEventsResponseSchema, { event });
    }
  };
}
