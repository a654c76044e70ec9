import { invalidArgument } from "../errors/index.ts";

/** Tenant ids: lower-case letters, digits and dashes, 1-63 characters, DNS-label style. */
const tenantPattern = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Resource ids inside a tenant (slugs, generated ids). */
const idPattern = /^[a-z0-9](?:[a-z0-9_-]{0,62})$/;

/**
 * The pseudo-tenant of audit events for requests refused before any tenant was known (no
 * token, or an unknown one). It is not a valid tenant id, so no resource and no scoped admin
 * key can ever belong to it: only admin keys on every tenant (`*`) can read its events.
 */
export const unknownTenant = "_unknown";

/** Whether `tenant` is a valid tenant id. */
export function isTenantId(tenant: string): boolean {
  return tenantPattern.test(tenant);
}

/**
 * Parses `tenants/{tenant}` and returns the tenant id, or throws InvalidArgument. Only the
 * audit log's readers pass `allowUnknownTenant`, to reach the events of unknownTenant.
 */
export function parseParent(
  parent: string,
  options: { allowUnknownTenant?: boolean } = {},
): string {
  const parts = parent.split("/");
  const tenant = parts[1] ?? "";
  const valid =
    isTenantId(tenant) || (options.allowUnknownTenant === true && tenant === unknownTenant);
  if (parts.length !== 2 || parts[0] !== "tenants" || !valid) {
    throw invalidArgument(`parent must look like tenants/{tenant}, got ${JSON.stringify(parent)}`);
  }
  return parts[1] as string;
}

/**
 * Parses `tenants/{tenant}/{collection}/{id}` for the given collection and returns both ids,
 * or throws InvalidArgument naming the expected shape.
 */
export function parseName(name: string, collection: string): { tenant: string; id: string } {
  const parts = name.split("/");
  if (
    parts.length !== 4 ||
    parts[0] !== "tenants" ||
    parts[2] !== collection ||
    !isTenantId(parts[1] ?? "") ||
    !idPattern.test(parts[3] ?? "")
  ) {
    throw invalidArgument(
      `name must look like tenants/{tenant}/${collection}/{id}, got ${JSON.stringify(name)}`,
    );
  }
  return { tenant: parts[1] as string, id: parts[3] as string };
}

/** Builds `tenants/{tenant}/{collection}/{id}`. */
export function formatName(tenant: string, collection: string, id: string): string {
  return `tenants/${tenant}/${collection}/${id}`;
}

/** Whether `id` is a valid resource id or slug. */
export function isResourceId(id: string): boolean {
  return idPattern.test(id);
}
