import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { changeSubject } from "../bus/types.ts";
import type { Queryable } from "../db/types.ts";
import {
  type ChangeEvent,
  ChangeEventSchema,
  ResourceType,
} from "../gen/latchkey/events/v1/events_pb.js";
import { newId } from "../ids/index.ts";
import { injectTraceHeaders } from "../telemetry/index.ts";
import { enqueue } from "./enqueue.ts";
import type { ChangeInput } from "./types.ts";

/** The last token of a change subject for each resource type (`latchkey.change.acme.token`). */
const subjectWords: Record<Exclude<ResourceType, ResourceType.UNSPECIFIED>, string> = {
  [ResourceType.TOKEN]: "token",
  [ResourceType.UPSTREAM]: "upstream",
  [ResourceType.POLICY_SET]: "policy",
  [ResourceType.CREDENTIAL]: "credential",
};

/** The subject word for a resource type (`token`, `upstream`, `policy`, `credential`). */
export function resourceSubjectWord(type: ResourceType): string {
  const word = subjectWords[type as keyof typeof subjectWords];
  if (!word) throw new Error(`no change subject for resource type ${type}`);
  return word;
}

/**
 * Builds a `latchkey.events.v1.ChangeEvent` for `change` and enqueues it, in the caller's
 * transaction, on `latchkey.change.{tenant}.{token|upstream|policy|credential}`, with the
 * current W3C trace context in its headers so consumers continue the admin call's trace.
 * Returns the event (its id is the NATS message id).
 */
export async function enqueueChange(
  tx: Queryable,
  schema: string,
  change: ChangeInput,
): Promise<ChangeEvent> {
  const event = create(ChangeEventSchema, {
    id: newId("event"),
    tenant: change.tenant,
    time: timestampFromDate(change.time ?? new Date()),
    resource: change.resource,
    resourceType: change.resourceType,
    action: change.action,
    actor: change.actor,
    version: BigInt(change.version ?? 0),
  });
  await enqueue(tx, schema, {
    id: event.id,
    subject: changeSubject(change.tenant, resourceSubjectWord(change.resourceType)),
    payload: toBinary(ChangeEventSchema, event),
    headers: injectTraceHeaders({}),
  });
  return event;
}
