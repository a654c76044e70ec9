import type { ConnectRouter } from "@connectrpc/connect";
import { TokenService } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { TokenServiceDeps } from "./deps.ts";
import { createToken } from "./handlers/create-token.ts";
import { getToken } from "./handlers/get-token.ts";
import { listTokens } from "./handlers/list-tokens.ts";
import { revokeToken } from "./handlers/revoke-token.ts";
import { updateToken } from "./handlers/update-token.ts";
import { verifyToken } from "./handlers/verify-token.ts";

/**
 * Registers TokenService. RotateToken is deliberately absent, so Connect answers it with
 * Unimplemented until rotation is built; the token_secrets table is already shaped for it.
 * Handlers throw DomainError; the libs/rpc interceptor maps it to a Connect code.
 */
export function createTokenRoutes(deps: TokenServiceDeps): (router: ConnectRouter) => void {
  return (router) => {
    router.service(TokenService, {
      createToken: (req, ctx) => createToken(deps, req, ctx),
      getToken: (req, ctx) => getToken(deps, req, ctx),
      listTokens: (req, ctx) => listTokens(deps, req, ctx),
      updateToken: (req, ctx) => updateToken(deps, req, ctx),
      revokeToken: (req, ctx) => revokeToken(deps, req, ctx),
      verifyToken: (req, ctx) => verifyToken(deps, req, ctx),
    });
  };
}
