import { create, toBinary } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { isUniqueViolation } from "../../../libs/db/index.ts";
import { alreadyExists } from "../../../libs/errors/index.ts";
import { ChangeAction } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type CreateCredentialRequest,
  type CreateCredentialResponse,
  CreateCredentialResponseSchema,
  SecretMaterialSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { newId } from "../../../libs/ids/index.ts";
import { parseParent } from "../../../libs/names/index.ts";
import { parseCredentialId, parseCredentialInput, parseRequestId } from "../credential-input.ts";
import { credentialName, toCredentialMessage } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import { seal } from "../envelope.ts";
import { recordCredentialChange } from "../events.ts";
import { validateMaterial } from "../scheme.ts";
import * as store from "../store.ts";

/** CreateCredential: stores the metadata and version 1 of the material, sealed. */
export function createCredential(deps: VaultDeps) {
  return async (
    req: CreateCredentialRequest,
    ctx: HandlerContext,
  ): Promise<CreateCredentialResponse> => {
    const tenant = parseParent(req.parent);
    const principal = requireAdmin(ctx, tenant, "write");
    const input = parseCredentialInput(req.credential);
    validateMaterial(input.scheme, req.material);
    const requestId = parseRequestId(req.requestId);
    const id = parseCredentialId(req.credentialId) ?? newId("credential");

    const replay = requestId ? await replayOf(deps, tenant, requestId) : undefined;
    if (replay) return replay;

    // Sealed before the transaction: encryption needs no lock, only the row's coordinates.
    const sealed = await seal(
      deps.keys,
      { tenant, credentialId: id, version: 1 },
      toBinary(SecretMaterialSchema, req.material ?? create(SecretMaterialSchema)),
    );
    const now = deps.clock();
    let row: store.CredentialRow | undefined;
    try {
      row = await deps.db.transaction(async (tx) => {
        const inserted = await store.insertCredential(tx, {
          tenant,
          id,
          displayName: input.displayName,
          scheme: input.scheme,
          allowedOrigins: input.allowedOrigins,
          currentVersion: 1,
          requestId: requestId ?? null,
          now,
        });
        // A concurrent call with the same request_id won: write nothing, answer with its result.
        if (!inserted) return undefined;
        await store.insertVersion(tx, tenant, id, 1, sealed, now);
        await recordCredentialChange(tx, {
          tenant,
          id,
          action: ChangeAction.CREATED,
          actor: actorOf(principal),
          version: 1,
          time: now,
        });
        return inserted;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // The id is taken, unless by a concurrent retry of this very call (same request_id).
    }
    if (!row) {
      const winner = requestId ? await replayOf(deps, tenant, requestId) : undefined;
      if (!winner) throw alreadyExists(`credential ${credentialName(tenant, id)} already exists`);
      return winner;
    }
    deps.kickRelay();
    return create(CreateCredentialResponseSchema, {
      credential: toCredentialMessage(row, [{ version: 1, state: "enabled", createTime: now }]),
    });
  };
}

/** The answer a CreateCredential with this request_id already got, if there was one. */
async function replayOf(
  deps: VaultDeps,
  tenant: string,
  requestId: string,
): Promise<CreateCredentialResponse | undefined> {
  const row = await store.selectCredentialByRequestId(deps.db, tenant, requestId);
  if (!row) return undefined;
  const versions = await store.listVersions(deps.db, tenant, [row.id]);
  return create(CreateCredentialResponseSchema, {
    credential: toCredentialMessage(row, versions.get(row.id) ?? []),
  });
}
