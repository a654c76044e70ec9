import { fromBinary } from "@bufbuild/protobuf";
import type { Bus, BusMessage, Subscription } from "../../libs/bus/types.ts";
import { ChangeEventSchema, ResourceType } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import type { Credentials } from "./credential.ts";
import type { UpstreamResolver } from "./resolve-upstream.ts";
import type { Verifier } from "./verify.ts";

/** Subject of every change event, all tenants and resources. */
export const changeSubjects = "latchkey.change.>";

/** The caches a change event may invalidate. */
export interface InvalidationTargets {
  verifier: Pick<Verifier, "invalidateToken">;
  upstreams: Pick<UpstreamResolver, "invalidateTenant">;
  credentials: Pick<Credentials, "invalidateCredential">;
}

/**
 * Subscribes to change events and drops what they make stale: a token's verdicts, a
 * tenant's bundle (upstream or policy set), a credential's leases. A live subscription, not
 * a durable consumer: a gateway that misses events (NATS down) is bounded by the caches'
 * TTLs instead, which is why those stay short.
 */
export function subscribeInvalidation(
  bus: Bus,
  targets: InvalidationTargets,
  log: Logger,
): Subscription {
  return bus.subscribe(changeSubjects, (message: BusMessage) => {
    let event: ReturnType<typeof fromBinary<typeof ChangeEventSchema>>;
    try {
      event = fromBinary(ChangeEventSchema, message.data);
    } catch {
      log.warn({ subject: message.subject }, "undecodable change event ignored");
      return;
    }
    switch (event.resourceType) {
      case ResourceType.TOKEN:
        targets.verifier.invalidateToken(event.resource);
        break;
      case ResourceType.UPSTREAM:
      case ResourceType.POLICY_SET:
        targets.upstreams.invalidateTenant(event.tenant);
        break;
      case ResourceType.CREDENTIAL:
        targets.credentials.invalidateCredential(event.resource);
        break;
      default:
        return;
    }
    log.debug({ resource: event.resource, type: event.resourceType }, "cache invalidated");
  });
}
