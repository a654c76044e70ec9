import { create, toBinary } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import { ChangeAction } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type AddCredentialVersionRequest,
  type AddCredentialVersionResponse,
  AddCredentialVersionResponseSchema,
  SecretMaterialSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { collection, toCredentialMessage } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import { seal } from "../envelope.ts";
import { recordCredentialChange } from "../events.ts";
import { validateMaterial } from "../scheme.ts";
import * as store from "../store.ts";

/**
 * AddCredentialVersion (rotation): seals new material as the next version and makes it
 * current at once; older versions stay enabled, so a rollback is one disable away.
 */
export function addCredentialVersion(deps: VaultDeps) {
  return async (
    req: AddCredentialVersionRequest,
    ctx: HandlerContext,
  ): Promise<AddCredentialVersionResponse> => {
    const { tenant, id } = parseName(req.name, collection);
    const principal = requireAdmin(ctx, tenant, "write");
    const now = deps.clock();
    const credential = await deps.db.transaction(async (tx) => {
      // The row lock serializes concurrent rotations of one credential: each gets its own number.
      const row = await store.selectCredential(tx, tenant, id, { forUpdate: true });
      if (!row) throw notFound(`credential ${req.name} not found`);
      validateMaterial(row.scheme, req.material);
      const versions = (await store.listVersions(tx, tenant, [id])).get(id) ?? [];
      const version = Math.max(0, ...versions.map((v) => v.version)) + 1;
      const sealed = await seal(
        deps.keys,
        { tenant, credentialId: id, version },
        toBinary(SecretMaterialSchema, req.material ?? create(SecretMaterialSchema)),
      );
      await store.insertVersion(tx, tenant, id, version, sealed, now);
      const updated = (await store.setCurrentVersion(tx, tenant, id, version, now)) ?? row;
      await recordCredentialChange(tx, {
        tenant,
        id,
        action: ChangeAction.UPDATED,
        actor: actorOf(principal),
        version,
        time: now,
      });
      return toCredentialMessage(updated, [
        ...versions,
        { version, state: "enabled", createTime: now },
      ]);
    });
    deps.kickRelay();
    return create(AddCredentialVersionResponseSchema, { credential });
  };
}
