import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { requireAdmin } from "../../../libs/auth/principal.ts";
import {
  type RotateKeyEncryptionKeyRequest,
  type RotateKeyEncryptionKeyResponse,
  RotateKeyEncryptionKeyResponseSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { VaultDeps } from "../deps.ts";
import { rewrap } from "../envelope.ts";
import * as store from "../store.ts";

/** Rows re-wrapped per transaction: short transactions, bounded memory. */
const batchSize = 100;

/**
 * RotateKeyEncryptionKey: re-wraps every data key not yet wrapped by the current KEK. Run
 * it after deploying a new LATCHKEY_VAULT_KEK (with the previous one in
 * LATCHKEY_VAULT_OLD_KEKS); once it returns, the old KEK can be retired. Only the wrapped
 * keys change: material ciphertext is never decrypted, since its associated data leaves
 * out the KEK version. It spans every tenant, so only an admin key on all tenants (`*`)
 * with the manage action may run it. Safe to repeat or run concurrently.
 */
export function rotateKeyEncryptionKey(deps: VaultDeps) {
  return async (
    _req: RotateKeyEncryptionKeyRequest,
    ctx: HandlerContext,
  ): Promise<RotateKeyEncryptionKeyResponse> => {
    requireAdmin(ctx, "*", "manage");
    const kekVersion = deps.keys.current.version;
    let rewrapped = 0;
    for (;;) {
      const count = await deps.db.transaction(async (tx) => {
        const rows = await store.selectWrappedByOtherKek(tx, kekVersion, batchSize);
        for (const row of rows) {
          const slot = { tenant: row.tenant, credentialId: row.credentialId, version: row.version };
          await store.updateWrappedKey(tx, {
            ...row,
            sealed: await rewrap(deps.keys, slot, row.sealed),
          });
        }
        return rows.length;
      });
      rewrapped += count;
      if (count < batchSize) break;
    }
    return create(RotateKeyEncryptionKeyResponseSchema, {
      kekVersion,
      rewrapped: BigInt(rewrapped),
    });
  };
}
