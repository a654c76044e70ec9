import type { ConnectRouter } from "@connectrpc/connect";
import type { Bus } from "../../libs/bus/types.ts";
import type { Queryable } from "../../libs/db/types.ts";
import { AuditService } from "../../libs/gen/latchkey/audit/v1/audit_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { createGetUsage } from "./handlers/get-usage.ts";
import { createListEvents } from "./handlers/list-events.ts";
import { createStreamEvents } from "./handlers/stream-events.ts";

/** What the AuditService handlers need. */
export interface AuditRoutesDeps {
  db: Queryable;
  bus: Bus;
  log: Logger;
  /** Events buffered per StreamEvents call before a slow client is cut off. */
  streamBuffer: number;
  /** The signal aborted when the component stops, ending open StreamEvents calls. */
  shutdown: () => AbortSignal;
  clock?: () => Date;
}

/**
 * Registers AuditService. VerifyChain is deliberately absent, so it answers Unimplemented:
 * the hash chain it checks is a later release.
 */
export function registerAuditRoutes(router: ConnectRouter, deps: AuditRoutesDeps): void {
  router.service(AuditService, {
    listEvents: createListEvents(deps),
    streamEvents: createStreamEvents({
      bus: deps.bus,
      log: deps.log,
      maxBuffered: deps.streamBuffer,
      shutdown: deps.shutdown,
    }),
    getUsage: createGetUsage(deps),
  });
}
