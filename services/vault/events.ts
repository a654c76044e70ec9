import type { Queryable } from "../../libs/db/types.ts";
import { type ChangeAction, ResourceType } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { enqueueChange } from "../../libs/outbox/index.ts";
import { credentialName } from "./credential-message.ts";

/** A change to one credential, to announce once the transaction commits. */
export interface CredentialChange {
  tenant: string;
  id: string;
  action: ChangeAction;
  /** The admin key id that made the change. */
  actor: string;
  /** The current version after the change (0: none). */
  version: number;
  /** When the change happened: the time written to the rows. */
  time: Date;
}

/**
 * Enqueues a credential ChangeEvent in the caller's transaction (transactional outbox), on
 * `latchkey.change.{tenant}.credential`. Gateways drop cached material on it. The event
 * names the credential and its version only: never material.
 */
export async function recordCredentialChange(
  tx: Queryable,
  change: CredentialChange,
): Promise<void> {
  await enqueueChange(tx, "vault", {
    tenant: change.tenant,
    resource: credentialName(change.tenant, change.id),
    resourceType: ResourceType.CREDENTIAL,
    action: change.action,
    actor: change.actor,
    version: change.version,
    time: change.time,
  });
}
