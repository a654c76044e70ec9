import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { DomainError, permissionDenied, unauthenticated } from "../errors/index.ts";

/** Admin roles, from most to least powerful. */
export type Role = "admin" | "operator" | "auditor" | "reader";

/** Who is calling, as established by the authentication interceptor. */
export type Principal =
  | {
      kind: "admin";
      /** Admin key id (`key_...`), recorded as the actor of changes. */
      keyId: string;
      role: Role;
      /** Tenants the key may act on; `*` means every tenant. */
      tenants: readonly string[];
    }
  | { kind: "gateway" };

/** Where the interceptor puts the principal for handlers to read. */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "latchkey principal",
});

/** Resolves a request's `authorization` header value to a principal, or undefined. */
export type Authenticator = (authorization: string | undefined) => Promise<Principal | undefined>;

/**
 * What an admin call does, checked against the caller's role:
 * read (metadata), write (create/update/revoke resources), audit (read the audit log),
 * manage (key-encryption-key rotation and other operator-of-Latchkey actions).
 */
export type Action = "read" | "write" | "audit" | "manage";

const allowed: Record<Action, readonly Role[]> = {
  read: ["admin", "operator", "auditor", "reader"],
  write: ["admin", "operator"],
  audit: ["admin", "operator", "auditor"],
  manage: ["admin"],
};

/**
 * Returns the admin principal if it may do `action` on `tenant`; throws Unauthenticated
 * without credentials and PermissionDenied otherwise. The gateway identity is not an admin.
 */
export function requireAdmin(ctx: HandlerContext, tenant: string, action: Action) {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw unauthenticated("missing or invalid admin key");
  if (principal.kind !== "admin") throw permissionDenied(`the gateway identity may not ${action}`);
  if (!allowed[action].includes(principal.role)) {
    throw permissionDenied(`role ${principal.role} may not ${action}`);
  }
  if (!principal.tenants.includes("*") && !principal.tenants.includes(tenant)) {
    // Same wording whether or not the tenant exists, so keys cannot probe other tenants.
    throw permissionDenied(`this key may not act on tenant ${tenant}`);
  }
  return principal;
}

/**
 * Allows the gateway identity, and admins with `action` on every tenant (for debugging the
 * data plane with an admin key); throws otherwise.
 */
export function requireGateway(ctx: HandlerContext, adminAction?: Action): Principal {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw unauthenticated("missing or invalid credentials");
  if (principal.kind === "gateway") return principal;
  if (
    adminAction &&
    allowed[adminAction].includes(principal.role) &&
    principal.tenants.includes("*")
  ) {
    return principal;
  }
  throw new DomainError("permission_denied", "only the gateway identity may call this");
}

/** The actor recorded on changes and audit events: the admin key id, or `gateway`. */
export function actorOf(principal: Principal): string {
  return principal.kind === "admin" ? principal.keyId : "gateway";
}
