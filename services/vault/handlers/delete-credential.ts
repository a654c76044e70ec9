import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import { ChangeAction } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type DeleteCredentialRequest,
  type DeleteCredentialResponse,
  DeleteCredentialResponseSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { collection } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import { recordCredentialChange } from "../events.ts";
import * as store from "../store.ts";

/**
 * DeleteCredential: removes the credential and every version. The wrapped data keys go
 * with the rows, so backups aside the material is unrecoverable from then on.
 */
export function deleteCredential(deps: VaultDeps) {
  return async (
    req: DeleteCredentialRequest,
    ctx: HandlerContext,
  ): Promise<DeleteCredentialResponse> => {
    const { tenant, id } = parseName(req.name, collection);
    const principal = requireAdmin(ctx, tenant, "write");
    await deps.db.transaction(async (tx) => {
      const deleted = await store.deleteCredential(tx, tenant, id);
      if (!deleted) throw notFound(`credential ${req.name} not found`);
      await recordCredentialChange(tx, {
        tenant,
        id,
        action: ChangeAction.DELETED,
        actor: actorOf(principal),
        version: 0,
        time: deps.clock(),
      });
    });
    deps.kickRelay();
    return create(DeleteCredentialResponseSchema);
  };
}
