import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Credential,
  CredentialSchema,
  CredentialVersionState,
} from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { formatName } from "../../libs/names/index.ts";
import type { CredentialRow, VersionRow } from "./store.ts";

/** The collection segment of credential names: `tenants/{tenant}/credentials/{id}`. */
export const collection = "credentials";

/** A credential's resource name. */
export function credentialName(tenant: string, id: string): string {
  return formatName(tenant, collection, id);
}

/**
 * The Credential message for a row and its versions. Built only from metadata: rows that
 * hold ciphertext never reach this function, so no response can carry material.
 */
export function toCredentialMessage(
  row: CredentialRow,
  versions: readonly VersionRow[],
): Credential {
  return create(CredentialSchema, {
    name: credentialName(row.tenant, row.id),
    displayName: row.displayName,
    scheme: row.scheme,
    allowedOrigins: row.allowedOrigins,
    currentVersion: row.currentVersion,
    versions: versions.map((v) => ({
      version: v.version,
      state:
        v.state === "enabled" ? CredentialVersionState.ENABLED : CredentialVersionState.DISABLED,
      createTime: timestampFromDate(v.createTime),
    })),
    createTime: timestampFromDate(row.createTime),
    updateTime: timestampFromDate(row.updateTime),
  });
}
