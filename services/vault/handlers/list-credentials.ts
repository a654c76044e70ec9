import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import {
  type ListCredentialsRequest,
  type ListCredentialsResponse,
  ListCredentialsResponseSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { decodePageToken, encodePageToken, pageSize } from "../../../libs/paging/index.ts";
import { toCredentialMessage } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import * as store from "../store.ts";

/** ListCredentials: a tenant's credentials in id order, metadata only, keyset-paged. */
export function listCredentials(deps: VaultDeps) {
  return async (
    req: ListCredentialsRequest,
    ctx: HandlerContext,
  ): Promise<ListCredentialsResponse> => {
    const tenant = parseParent(req.parent);
    requireAdmin(ctx, tenant, "read");
    const size = pageSize(req.pageSize);
    const cursor = decodePageToken<{ id: string }>(req.pageToken, ["id"]);
    // One row more than asked says whether another page exists without a count query.
    const rows = await store.listCredentials(deps.db, tenant, cursor?.id, size + 1);
    const page = rows.slice(0, size);
    const versions = await store.listVersions(
      deps.db,
      tenant,
      page.map((row) => row.id),
    );
    const last = page.at(-1);
    return create(ListCredentialsResponseSchema, {
      credentials: page.map((row) => toCredentialMessage(row, versions.get(row.id) ?? [])),
      nextPageToken: rows.length > size && last ? encodePageToken({ id: last.id }) : "",
    });
  };
}
