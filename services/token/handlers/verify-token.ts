import type { HandlerContext } from "@connectrpc/connect";
import { requireGateway } from "../../../libs/auth/principal.ts";
import {
  VerifyFailure,
  type VerifyTokenRequest,
  type VerifyTokenResponse,
} from "../../../libs/gen/latchkey/token/v1/token_pb.js";
import { parseTokenSecret } from "../../../libs/token-format/index.ts";
import type { TokenServiceDeps } from "../deps.ts";
import { findBySecretHash } from "../store.ts";
import { cacheTtlMs, refusal, verdict } from "../verify.ts";

/**
 * VerifyToken, the gateway's hot path: offline format checks first (MALFORMED costs no
 * I/O), then one lookup by keyed hash. Refusals are answers, not errors, so the secret
 * never reaches an error message or an error log.
 */
export async function verifyToken(
  deps: TokenServiceDeps,
  req: VerifyTokenRequest,
  ctx: HandlerContext,
): Promise<VerifyTokenResponse> {
  requireGateway(ctx, "read");
  const parsed = parseTokenSecret(req.secret);
  if (!parsed) return refusal(VerifyFailure.MALFORMED, cacheTtlMs.malformed);
  const row = await findBySecretHash(deps.db, deps.hashSecret(parsed.secret));
  return verdict(row, deps.clock());
}
