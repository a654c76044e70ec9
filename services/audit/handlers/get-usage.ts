import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import type { Queryable } from "../../../libs/db/types.ts";
import { invalidArgument } from "../../../libs/errors/index.ts";
import {
  type GetUsageRequest,
  type GetUsageResponse,
  GetUsageResponseSchema,
} from "../../../libs/gen/latchkey/audit/v1/audit_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { MalformedEventError, timestampMicros } from "../event-row.ts";
import { countUsage } from "../store.ts";

/** The window GetUsage counts when the request leaves one end open: 24 hours. */
export const defaultUsageWindowUs = 24n * 3600n * 1_000_000n;

/**
 * Creates the GetUsage handler: gateway requests in [start, end) counted by token, upstream
 * and decision. Without times the window is the last 24 hours; with one end only, the 24
 * hours before or after it.
 */
export function createGetUsage(deps: { db: Queryable; clock?: () => Date }) {
  const clock = deps.clock ?? (() => new Date());
  return async (req: GetUsageRequest, ctx: HandlerContext): Promise<GetUsageResponse> => {
    const tenant = parseParent(req.parent, { allowUnknownTenant: true });
    requireAdmin(ctx, tenant, "audit");
    const start = req.startTime ? micros(req.startTime, "start_time") : undefined;
    const end = req.endTime ? micros(req.endTime, "end_time") : undefined;
    const endUs =
      end ??
      (start === undefined ? BigInt(clock().getTime()) * 1000n : start + defaultUsageWindowUs);
    const startUs = start ?? endUs - defaultUsageWindowUs;
    if (startUs >= endUs) throw invalidArgument("start_time must be before end_time");
    const counts = await countUsage(deps.db, tenant, { startUs, endUs });
    return create(GetUsageResponseSchema, {
      rows: counts.map((c) => ({
        token: c.token,
        upstream: c.upstream,
        decision: Number(c.decision),
        count: BigInt(c.count),
      })),
    });
  };
}

function micros(ts: Parameters<typeof timestampMicros>[0], field: string): bigint {
  try {
    return timestampMicros(ts);
  } catch (err) {
    if (err instanceof MalformedEventError) throw invalidArgument(`${field} is out of range`);
    throw err;
  }
}
