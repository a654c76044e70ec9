import type { HandlerContext } from "@connectrpc/connect";
import { type Principal, principalKey, requireAdmin } from "../../../libs/auth/principal.ts";

/**
 * Evaluate and BatchEvaluate answer the gateway identity for any tenant, and admins with
 * read access to the tenant, so that policy authors can test their rules without a gateway.
 * A decision reveals nothing an admin of the tenant cannot already read with GetPolicySet.
 */
export function requireEvaluator(ctx: HandlerContext, tenant: string): Principal {
  const principal = ctx.values.get(principalKey);
  if (principal?.kind === "gateway") return principal;
  return requireAdmin(ctx, tenant, "read");
}
