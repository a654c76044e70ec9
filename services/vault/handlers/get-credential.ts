import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import { notFound } from "../../../libs/errors/index.ts";
import {
  type GetCredentialRequest,
  type GetCredentialResponse,
  GetCredentialResponseSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { collection, toCredentialMessage } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import * as store from "../store.ts";

/** GetCredential: metadata and versions, never material. */
export function getCredential(deps: VaultDeps) {
  return async (req: GetCredentialRequest, ctx: HandlerContext): Promise<GetCredentialResponse> => {
    const { tenant, id } = parseName(req.name, collection);
    requireAdmin(ctx, tenant, "read");
    const row = await store.selectCredential(deps.db, tenant, id);
    if (!row) throw notFound(`credential ${req.name} not found`);
    const versions = await store.listVersions(deps.db, tenant, [id]);
    return create(GetCredentialResponseSchema, {
      credential: toCredentialMessage(row, versions.get(id) ?? []),
    });
  };
}
