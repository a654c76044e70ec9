import type { ConnectRouter } from "@connectrpc/connect";
import { VaultService } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { VaultDeps } from "./deps.ts";
import { addCredentialVersion } from "./handlers/add-credential-version.ts";
import { createCredential } from "./handlers/create-credential.ts";
import { deleteCredential } from "./handlers/delete-credential.ts";
import { disableCredentialVersion } from "./handlers/disable-credential-version.ts";
import { getCredential } from "./handlers/get-credential.ts";
import { listCredentials } from "./handlers/list-credentials.ts";
import { resolveCredential } from "./handlers/resolve-credential.ts";
import { rotateKeyEncryptionKey } from "./handlers/rotate-key-encryption-key.ts";

/** Registers VaultService on `router`, one handler per RPC. */
export function vaultRoutes(deps: VaultDeps): (router: ConnectRouter) => void {
  return (router) => {
    router.service(VaultService, {
      createCredential: createCredential(deps),
      getCredential: getCredential(deps),
      listCredentials: listCredentials(deps),
      deleteCredential: deleteCredential(deps),
      addCredentialVersion: addCredentialVersion(deps),
      disableCredentialVersion: disableCredentialVersion(deps),
      resolveCredential: resolveCredential(deps),
      rotateKeyEncryptionKey: rotateKeyEncryptionKey(deps),
    });
  };
}
