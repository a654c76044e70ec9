import { Writable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type AuditEvent,
  AuditEventBatchSchema,
  AuditEventSchema,
  ChangeAction,
  type ChangeEvent,
  ChangeEventSchema,
  GatewayDecision,
  ResourceType,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { newId } from "../../libs/ids/index.ts";
import { createLogger, type Logger } from "../../libs/log/index.ts";

/** Fields a test sets on a gateway event; everything else gets a plausible default. */
export interface GatewayEventInit {
  tenant?: string;
  id?: string;
  timeMs?: number;
  traceId?: string;
  token?: string;
  upstream?: string;
  decision?: GatewayDecision;
  status?: number;
}

/** Builds a gateway-request AuditEvent, as the gateway publishes it (tests and bench-ingest.ts). */
export function gatewayEvent(init: GatewayEventInit = {}): AuditEvent {
  const timeMs = init.timeMs ?? Date.now();
  return create(AuditEventSchema, {
    id: init.id ?? newId("event", timeMs),
    tenant: init.tenant ?? "acme",
    time: timestampFromMs(timeMs),
    traceId: init.traceId ?? "",
    detail: {
      case: "gatewayRequest",
      value: {
        requestId: newId("request", timeMs),
        token: init.token ?? "tenants/acme/tokens/tok_01jd4k0000000000000000000a",
        upstream: init.upstream ?? "stripe",
        method: "GET",
        path: "/v1/charges",
        decision: init.decision ?? GatewayDecision.ALLOWED,
        status: init.status ?? 200,
        durationUs: 1234n,
      },
    },
  });
}

/** Builds a ChangeEvent, as a service's outbox publishes it (tests and bench-ingest.ts). */
export function changeEvent(
  init: { tenant?: string; id?: string; timeMs?: number; resource?: string } = {},
): ChangeEvent {
  const timeMs = init.timeMs ?? Date.now();
  const tenant = init.tenant ?? "acme";
  return create(ChangeEventSchema, {
    id: init.id ?? newId("event", timeMs),
    tenant,
    time: timestampFromMs(timeMs),
    resource: init.resource ?? `tenants/${tenant}/tokens/tok_01jd4k0000000000000000000a`,
    resourceType: ResourceType.TOKEN,
    action: ChangeAction.REVOKED,
    actor: "key_admin",
    version: 0n,
  });
}

/** The binary payload of an AuditEvent. */
export function auditBytes(event: AuditEvent): Uint8Array {
  return toBinary(AuditEventSchema, event);
}

/** The binary payload of an audit-stream message: an AuditEventBatch of `events`. */
export function auditBatchBytes(...events: AuditEvent[]): Uint8Array {
  return toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events }));
}

/** The binary payload of a ChangeEvent. */
export function changeBytes(event: ChangeEvent): Uint8Array {
  return toBinary(ChangeEventSchema, event);
}

/** A debug-level logger whose raw output a test can search (tests and bench-ingest.ts). */
export function captureLog(): { log: Logger; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return {
    log: createLogger({ level: "debug", component: "test", destination }),
    text: () => chunks.join(""),
  };
}

/** Polls `check` until it returns true; fails after `timeoutMs` naming `what` (tests and bench-ingest.ts). */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
