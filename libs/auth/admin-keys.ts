import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Db } from "../db/types.ts";
import { invalidArgument } from "../errors/index.ts";
import { newId } from "../ids/index.ts";
import { isTenantId } from "../names/index.ts";
import type { Authenticator, Principal, Role } from "./principal.ts";

/** Where the admin-key migrations live, for `migrate` and `latchkey migrate`. */
export const authMigrations = {
  schema: "auth",
  dir: new URL("./migrations/", import.meta.url),
} as const;

const roles: readonly Role[] = ["admin", "operator", "auditor", "reader"];
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Generates a new admin key: `lka_` and 43 base62 characters (256 random bits). */
export function generateAdminKey(): string {
  let n = BigInt(`0x${randomBytes(32).toString("hex")}`);
  let out = "";
  for (let i = 0; i < 43; i++) {
    out = base62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return `lka_${out}`;
}

function hashKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

/** An admin key's metadata; the key itself is never stored. */
export interface AdminKeyRecord {
  id: string;
  role: Role;
  tenants: string[];
  displayName: string;
}

/** Stores admin keys (hashed) in the `auth` schema. */
export interface AdminKeyStore {
  /** Creates a key; the returned `key` is shown once and never stored. */
  create(input: {
    role: Role;
    tenants: string[];
    displayName?: string;
  }): Promise<{ key: string; record: AdminKeyRecord }>;
  /**
   * Registers a key chosen by the operator (LATCHKEY_ADMIN_KEY) with role admin on every
   * tenant, unless it is already registered. Returns its id.
   */
  bootstrap(key: string): Promise<string>;
  /** Finds the live key whose hash matches. */
  lookup(key: string): Promise<AdminKeyRecord | undefined>;
  /** Lists live keys. */
  list(): Promise<AdminKeyRecord[]>;
  /** Revokes a key by id; returns whether a live key was revoked. */
  revoke(id: string): Promise<boolean>;
}

interface Row {
  id: string;
  role: Role;
  tenants: string[];
  display_name: string;
}

const toRecord = (row: Row): AdminKeyRecord => ({
  id: row.id,
  role: row.role,
  tenants: row.tenants,
  displayName: row.display_name,
});

/** Creates the admin-key store over a migrated database. */
export function createAdminKeyStore(db: Db): AdminKeyStore {
  return {
    async create({ role, tenants, displayName = "" }) {
      if (!roles.includes(role)) throw invalidArgument(`role must be one of ${roles.join(", ")}`);
      if (tenants.length === 0) throw invalidArgument("at least one tenant (or *) is required");
      for (const tenant of tenants) {
        if (tenant !== "*" && !isTenantId(tenant))
          throw invalidArgument(`invalid tenant ${JSON.stringify(tenant)}`);
      }
      const key = generateAdminKey();
      const id = newId("adminKey");
      await db.query(
        "INSERT INTO auth.admin_keys (id, key_hash, role, tenants, display_name) VALUES ($1, $2, $3, $4, $5)",
        [id, hashKey(key), role, tenants, displayName],
      );
      return { key, record: { id, role, tenants, displayName } };
    },
    async bootstrap(key) {
      const id = newId("adminKey");
      // ON CONFLICT keeps the first registration: restarting with the same key changes nothing.
      await db.query(
        `INSERT INTO auth.admin_keys (id, key_hash, role, tenants, display_name)
         VALUES ($1, $2, 'admin', ARRAY['*'], 'bootstrap') ON CONFLICT (key_hash) DO NOTHING`,
        [id, hashKey(key)],
      );
      const found = await this.lookup(key);
      if (!found) throw new Error("the bootstrap admin key is registered but revoked");
      return found.id;
    },
    async lookup(key) {
      const { rows } = await db.query<Row>(
        "SELECT id, role, tenants, display_name FROM auth.admin_keys WHERE key_hash = $1 AND revoke_time IS NULL",
        [hashKey(key)],
      );
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async list() {
      const { rows } = await db.query<Row>(
        "SELECT id, role, tenants, display_name FROM auth.admin_keys WHERE revoke_time IS NULL ORDER BY id",
      );
      return rows.map(toRecord);
    },
    async revoke(id) {
      const { rowCount } = await db.query(
        "UPDATE auth.admin_keys SET revoke_time = now() WHERE id = $1 AND revoke_time IS NULL",
        [id],
      );
      return rowCount > 0;
    },
  };
}

/** Options for createAuthenticator. */
export interface AuthenticatorOptions {
  /** Admin keys; absent on components without a database (the gateway). */
  adminKeys?: AdminKeyStore;
  /** The gateway's shared secret; absent disables the gateway identity. */
  gatewayKey?: string;
  /** How long a lookup result is reused (default 5 s): a revoked admin key stops within it. */
  cacheTtlMs?: number;
  now?: () => number;
}

/**
 * Builds the authenticator used by the RPC interceptor: `Bearer <gateway key>` is the
 * gateway identity, `Bearer lka_...` an admin key. Results are cached briefly by key hash
 * so a busy gateway does not cost a database read per call.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { adminKeys, cacheTtlMs = 5_000, now = Date.now } = options;
  const gatewayHash = options.gatewayKey ? hashKey(options.gatewayKey) : undefined;
  const cache = new Map<string, { principal: Principal | undefined; until: number }>();
  return async (authorization) => {
    if (!authorization?.startsWith("Bearer ")) return undefined;
    const presented = authorization.slice("Bearer ".length).trim();
    const hash = hashKey(presented);
    // Constant-time comparison: the gateway key is a long-lived shared secret.
    if (gatewayHash && timingSafeEqual(hash, gatewayHash)) return { kind: "gateway" };
    if (!adminKeys || !presented.startsWith("lka_")) return undefined;
    const cacheKey = hash.toString("base64");
    const hit = cache.get(cacheKey);
    if (hit && hit.until > now()) return hit.principal;
    const record = await adminKeys.lookup(presented);
    const principal: Principal | undefined = record
      ? { kind: "admin", keyId: record.id, role: record.role, tenants: record.tenants }
      : undefined;
    if (cache.size > 10_000) cache.clear();
    cache.set(cacheKey, { principal, until: now() + cacheTtlMs });
    return principal;
  };
}
