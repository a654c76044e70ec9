import { create, fromBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { requireGateway } from "../../../libs/auth/principal.ts";
import { failedPrecondition, notFound, permissionDenied } from "../../../libs/errors/index.ts";
import {
  type ResolveCredentialRequest,
  type ResolveCredentialResponse,
  ResolveCredentialResponseSchema,
  SecretMaterialSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { collection } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import { open } from "../envelope.ts";
import { normalizeOrigin } from "../origin.ts";
import * as store from "../store.ts";

/**
 * ResolveCredential: the current material of one credential for one origin, to the gateway
 * identity only. No admin fallback (requireGateway without an admin action): an admin key,
 * however powerful, never reads material back.
 */
export function resolveCredential(deps: VaultDeps) {
  return async (
    req: ResolveCredentialRequest,
    ctx: HandlerContext,
  ): Promise<ResolveCredentialResponse> => {
    requireGateway(ctx);
    const { tenant, id } = parseName(req.name, collection);
    const origin = normalizeOrigin(req.origin);
    const found = await store.selectCurrentSealed(deps.db, tenant, id);
    if (!found) throw notFound(`credential ${req.name} not found`);
    const { credential, sealed } = found;
    if (!credential.allowedOrigins.includes(origin)) {
      throw permissionDenied(`credential ${req.name} may not be sent to ${origin}`);
    }
    if (!sealed) throw failedPrecondition(`credential ${req.name} has no enabled version`);
    const plaintext = await open(
      deps.keys,
      { tenant, credentialId: id, version: credential.currentVersion },
      sealed,
    );
    return create(ResolveCredentialResponseSchema, {
      name: req.name,
      version: credential.currentVersion,
      scheme: credential.scheme,
      material: fromBinary(SecretMaterialSchema, plaintext),
      lease: durationFromMs(deps.leaseMs),
    });
  };
}
