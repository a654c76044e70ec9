import type { MigrateOptions, Queryable } from "../../libs/db/types.ts";

/**
 * Named SQL for the `token` schema. Every query on tokens carries `tenant = $1`, so a bug
 * elsewhere cannot read or change another tenant's row; the only lookup without a tenant is
 * VerifyToken's, by secret hash, where the token itself says which tenant it belongs to.
 */

/**
 * The token service's schema and migrations (with the standard outbox table), for
 * `latchkey migrate` and start-up: `migrate(db, migrations)`.
 */
export const migrations: MigrateOptions = {
  schema: "token",
  dir: new URL("./migrations/", import.meta.url),
  outbox: true,
};

/** A row of token.tokens as the service sees it. */
export interface TokenRow {
  tenant: string;
  id: string;
  displayName: string;
  subject: string;
  attributes: Record<string, string>;
  allowedUpstreams: string[];
  /** Null: never expires. */
  expireTime: Date | null;
  state: "active" | "revoked";
  displayPrefix: string;
  requestId: string | null;
  /** Incremented on every write; exposed as the etag. */
  version: number;
  createTime: Date;
  updateTime: Date;
  revokeTime: Date | null;
  revokeReason: string | null;
}

/** What VerifyToken reads for a secret: the token plus the presented secret's own expiry. */
export interface VerifyRow {
  tenant: string;
  id: string;
  subject: string;
  attributes: Record<string, string>;
  allowedUpstreams: string[];
  expireTime: Date | null;
  state: "active" | "revoked";
  /** Set only on a rotated-away secret: the end of its grace period. */
  secretExpireTime: Date | null;
}

interface RawTokenRow {
  tenant: string;
  id: string;
  display_name: string;
  subject: string;
  attributes: Record<string, string>;
  allowed_upstreams: string[];
  expire_time: Date | null;
  state: "active" | "revoked";
  display_prefix: string;
  request_id: string | null;
  version: number | string;
  create_time: Date;
  update_time: Date;
  revoke_time: Date | null;
  revoke_reason: string | null;
}

const columns = `tenant, id, display_name, subject, attributes, allowed_upstreams, expire_time,
  state, display_prefix, request_id, version, create_time, update_time, revoke_time, revoke_reason`;

function toRow(raw: RawTokenRow): TokenRow {
  return {
    tenant: raw.tenant,
    id: raw.id,
    displayName: raw.display_name,
    subject: raw.subject,
    attributes: raw.attributes,
    allowedUpstreams: raw.allowed_upstreams,
    expireTime: raw.expire_time,
    state: raw.state,
    displayPrefix: raw.display_prefix,
    requestId: raw.request_id,
    // Number() as well as the Db contract: a driver returning int8 as a string still works.
    version: Number(raw.version),
    createTime: raw.create_time,
    updateTime: raw.update_time,
    revokeTime: raw.revoke_time,
    revokeReason: raw.revoke_reason,
  };
}

/** Values of a new token row. */
export interface NewToken {
  tenant: string;
  id: string;
  displayName: string;
  subject: string;
  attributes: Record<string, string>;
  allowedUpstreams: string[];
  expireTime: Date | null;
  displayPrefix: string;
  requestId: string | null;
  now: Date;
}

const insertTokenSql = `
INSERT INTO token.tokens (tenant, id, display_name, subject, attributes, allowed_upstreams,
  expire_time, state, display_prefix, request_id, version, create_time, update_time)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7, 'active', $8, $9, 1, $10, $10)
ON CONFLICT (tenant, request_id) WHERE request_id IS NOT NULL DO NOTHING
RETURNING ${columns}`;

/**
 * Inserts a token. Returns undefined when another token already holds (tenant, request_id):
 * a concurrent retry of the same CreateToken won the race.
 */
export async function insertToken(tx: Queryable, token: NewToken): Promise<TokenRow | undefined> {
  const { rows } = await tx.query<RawTokenRow>(insertTokenSql, [
    token.tenant,
    token.id,
    token.displayName,
    token.subject,
    JSON.stringify(token.attributes),
    token.allowedUpstreams,
    token.expireTime,
    token.displayPrefix,
    token.requestId,
    token.now,
  ]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

const insertSecretSql = `
INSERT INTO token.token_secrets (hash, tenant, token_id, display_prefix, create_time)
VALUES ($1, $2, $3, $4, $5)`;

/** Stores the keyed hash of a token's current secret. */
export async function insertSecret(
  tx: Queryable,
  secret: { hash: Uint8Array; tenant: string; tokenId: string; displayPrefix: string; now: Date },
): Promise<void> {
  await tx.query(insertSecretSql, [
    secret.hash,
    secret.tenant,
    secret.tokenId,
    secret.displayPrefix,
    secret.now,
  ]);
}

const selectByRequestIdSql = `
SELECT ${columns} FROM token.tokens WHERE tenant = $1 AND request_id = $2`;

/** The token a previous CreateToken with this idempotency key created, if any. */
export async function findTokenByRequestId(
  q: Queryable,
  tenant: string,
  requestId: string,
): Promise<TokenRow | undefined> {
  const { rows } = await q.query<RawTokenRow>(selectByRequestIdSql, [tenant, requestId]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

const selectTokenSql = `SELECT ${columns} FROM token.tokens WHERE tenant = $1 AND id = $2`;
const selectTokenForUpdateSql = `${selectTokenSql} FOR UPDATE`;

/** One token of a tenant; `forUpdate` locks the row until the transaction ends. */
export async function getToken(
  q: Queryable,
  tenant: string,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<TokenRow | undefined> {
  const sql = options.forUpdate ? selectTokenForUpdateSql : selectTokenSql;
  const { rows } = await q.query<RawTokenRow>(sql, [tenant, id]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

const listTokensSql = `
SELECT ${columns} FROM token.tokens
WHERE tenant = $1
  AND ($2::text IS NULL OR id < $2)
  AND ($3::boolean OR state = 'active')
  AND ($4::text IS NULL OR subject = $4)
ORDER BY id DESC
LIMIT $5`;

/** Filters and keyset position for listTokens. */
export interface ListTokensQuery {
  /** Return tokens with ids below this one (the last id of the previous page). */
  beforeId?: string;
  showRevoked: boolean;
  subject?: string;
  limit: number;
}

/**
 * A page of a tenant's tokens, newest first. Ids are time-ordered, so `id DESC` is creation
 * order and the primary key (tenant, id) serves both the filter and the sort.
 */
export async function listTokens(
  q: Queryable,
  tenant: string,
  query: ListTokensQuery,
): Promise<TokenRow[]> {
  const { rows } = await q.query<RawTokenRow>(listTokensSql, [
    tenant,
    query.beforeId ?? null,
    query.showRevoked,
    query.subject ?? null,
    query.limit,
  ]);
  return rows.map(toRow);
}

/** The fields UpdateToken can change. */
export interface TokenChanges {
  displayName: string;
  subject: string;
  attributes: Record<string, string>;
  allowedUpstreams: string[];
  expireTime: Date | null;
}

const updateTokenSql = `
UPDATE token.tokens
SET display_name = $3, subject = $4, attributes = $5::jsonb, allowed_upstreams = $6::text[],
  expire_time = $7, update_time = $8, version = version + 1
WHERE tenant = $1 AND id = $2 AND state = 'active'
RETURNING ${columns}`;

/** Writes the mutable fields of an active token; undefined if it is missing or revoked. */
export async function updateToken(
  tx: Queryable,
  tenant: string,
  id: string,
  changes: TokenChanges,
  now: Date,
): Promise<TokenRow | undefined> {
  const { rows } = await tx.query<RawTokenRow>(updateTokenSql, [
    tenant,
    id,
    changes.displayName,
    changes.subject,
    JSON.stringify(changes.attributes),
    changes.allowedUpstreams,
    changes.expireTime,
    now,
  ]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

const revokeTokenSql = `
UPDATE token.tokens
SET state = 'revoked', revoke_time = $3, revoke_reason = $4, update_time = $3,
  version = version + 1
WHERE tenant = $1 AND id = $2 AND state = 'active'
RETURNING ${columns}`;

/**
 * Revokes an active token. Undefined when it is missing or already revoked (the caller
 * tells the two apart), so a repeated revoke changes nothing and emits no second event.
 */
export async function revokeToken(
  tx: Queryable,
  tenant: string,
  id: string,
  reason: string,
  now: Date,
): Promise<TokenRow | undefined> {
  const { rows } = await tx.query<RawTokenRow>(revokeTokenSql, [tenant, id, now, reason || null]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

const findBySecretHashSql = `
SELECT t.tenant, t.id, t.subject, t.attributes, t.allowed_upstreams, t.expire_time, t.state,
  s.expire_time AS secret_expire_time
FROM token.token_secrets s
JOIN token.tokens t ON t.tenant = s.tenant AND t.id = s.token_id
WHERE s.hash = $1`;

/**
 * VerifyToken's only query: the token behind a secret hash, through the primary keys of
 * both tables. No tenant filter: the secret is what identifies the tenant.
 */
export async function findBySecretHash(
  q: Queryable,
  hash: Uint8Array,
): Promise<VerifyRow | undefined> {
  const { rows } = await q.query<{
    tenant: string;
    id: string;
    subject: string;
    attributes: Record<string, string>;
    allowed_upstreams: string[];
    expire_time: Date | null;
    state: "active" | "revoked";
    secret_expire_time: Date | null;
  }>(findBySecretHashSql, [hash]);
  const raw = rows[0];
  if (!raw) return undefined;
  return {
    tenant: raw.tenant,
    id: raw.id,
    subject: raw.subject,
    attributes: raw.attributes,
    allowedUpstreams: raw.allowed_upstreams,
    expireTime: raw.expire_time,
    state: raw.state,
    secretExpireTime: raw.secret_expire_time,
  };
}
