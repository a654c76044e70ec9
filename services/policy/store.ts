import type { MigrateOptions, Queryable } from "../../libs/db/types.ts";

/**
 * Named SQL for the `policy` schema. Every query carries `tenant = $1`: a bug elsewhere
 * cannot read or change another tenant's upstreams or rules.
 */

/**
 * The policy service's schema and migrations (with the standard outbox table), for
 * `latchkey migrate` and start-up: `migrate(db, migrations)`.
 */
export const migrations: MigrateOptions = {
  schema: "policy",
  dir: new URL("./migrations/", import.meta.url),
  outbox: true,
};

/** How a gateway records requests to an upstream (stored lower-case). */
export type AuditModeValue = "async" | "sync";

/** The settable fields of an upstream, validated. */
export interface UpstreamFields {
  displayName: string;
  origin: string;
  basePath: string;
  credential: string;
  requestTimeoutMs: number;
  maxRequestBodyBytes: number;
  auditMode: AuditModeValue;
  forwardCookies: boolean;
}

/** A row of policy.upstreams. */
export interface UpstreamRow extends UpstreamFields {
  tenant: string;
  slug: string;
  requestId: string | null;
  /** Incremented on every write; exposed as the etag. */
  version: number;
  createTime: Date;
  updateTime: Date;
}

interface RawUpstreamRow {
  tenant: string;
  slug: string;
  display_name: string;
  origin: string;
  base_path: string;
  credential: string;
  request_timeout_ms: number | string;
  max_request_body_bytes: number | string;
  audit_mode: AuditModeValue;
  forward_cookies: boolean;
  request_id: string | null;
  version: number | string;
  create_time: Date;
  update_time: Date;
}

const upstreamColumns = `tenant, slug, display_name, origin, base_path, credential,
  request_timeout_ms, max_request_body_bytes, audit_mode, forward_cookies, request_id, version,
  create_time, update_time`;

function toUpstreamRow(raw: RawUpstreamRow): UpstreamRow {
  return {
    tenant: raw.tenant,
    slug: raw.slug,
    displayName: raw.display_name,
    origin: raw.origin,
    basePath: raw.base_path,
    credential: raw.credential,
    // Number() as well as the Db contract: a driver returning int8 as a string still works.
    requestTimeoutMs: Number(raw.request_timeout_ms),
    maxRequestBodyBytes: Number(raw.max_request_body_bytes),
    auditMode: raw.audit_mode,
    forwardCookies: raw.forward_cookies,
    requestId: raw.request_id,
    version: Number(raw.version),
    createTime: raw.create_time,
    updateTime: raw.update_time,
  };
}

/** Values of a new upstream. */
export interface NewUpstream extends UpstreamFields {
  tenant: string;
  slug: string;
  requestId: string | null;
  now: Date;
}

/**
 * Inserts an upstream. Returns undefined when the slug or the request_id is already taken
 * in the tenant (the caller tells which apart); never throws for either.
 */
export async function insertUpstream(
  tx: Queryable,
  u: NewUpstream,
): Promise<UpstreamRow | undefined> {
  const { rows } = await tx.query<RawUpstreamRow>(
    `INSERT INTO policy.upstreams (tenant, slug, display_name, origin, base_path, credential,
       request_timeout_ms, max_request_body_bytes, audit_mode, forward_cookies, request_id,
       version, create_time, update_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12)
     ON CONFLICT DO NOTHING
     RETURNING ${upstreamColumns}`,
    [
      u.tenant,
      u.slug,
      u.displayName,
      u.origin,
      u.basePath,
      u.credential,
      u.requestTimeoutMs,
      u.maxRequestBodyBytes,
      u.auditMode,
      u.forwardCookies,
      u.requestId,
      u.now,
    ],
  );
  return rows[0] === undefined ? undefined : toUpstreamRow(rows[0]);
}

/** One upstream by slug; `forUpdate` locks the row until the transaction ends. */
export async function getUpstream(
  q: Queryable,
  tenant: string,
  slug: string,
  options: { forUpdate?: boolean } = {},
): Promise<UpstreamRow | undefined> {
  const { rows } = await q.query<RawUpstreamRow>(
    `SELECT ${upstreamColumns} FROM policy.upstreams WHERE tenant = $1 AND slug = $2
     ${options.forUpdate ? "FOR UPDATE" : ""}`,
    [tenant, slug],
  );
  return rows[0] === undefined ? undefined : toUpstreamRow(rows[0]);
}

/** The upstream a CreateUpstream with this request_id created, if any. */
export async function findUpstreamByRequestId(
  q: Queryable,
  tenant: string,
  requestId: string,
): Promise<UpstreamRow | undefined> {
  const { rows } = await q.query<RawUpstreamRow>(
    `SELECT ${upstreamColumns} FROM policy.upstreams WHERE tenant = $1 AND request_id = $2`,
    [tenant, requestId],
  );
  return rows[0] === undefined ? undefined : toUpstreamRow(rows[0]);
}

/** A page of upstreams by slug, starting after `afterSlug`. */
export async function listUpstreams(
  q: Queryable,
  tenant: string,
  options: { afterSlug?: string; limit: number },
): Promise<UpstreamRow[]> {
  const { rows } = await q.query<RawUpstreamRow>(
    `SELECT ${upstreamColumns} FROM policy.upstreams
     WHERE tenant = $1 AND slug > $2 ORDER BY slug LIMIT $3`,
    [tenant, options.afterSlug ?? "", options.limit],
  );
  return rows.map(toUpstreamRow);
}

/** The upstreams among `slugs` (missing ones are simply absent). */
export async function getUpstreamsBySlug(
  q: Queryable,
  tenant: string,
  slugs: readonly string[],
): Promise<UpstreamRow[]> {
  if (slugs.length === 0) return [];
  const { rows } = await q.query<RawUpstreamRow>(
    `SELECT ${upstreamColumns} FROM policy.upstreams WHERE tenant = $1 AND slug = ANY($2::text[])`,
    [tenant, [...slugs]],
  );
  return rows.map(toUpstreamRow);
}

/** Every upstream of a tenant, by slug (GetBundle). */
export async function allUpstreams(q: Queryable, tenant: string): Promise<UpstreamRow[]> {
  const { rows } = await q.query<RawUpstreamRow>(
    `SELECT ${upstreamColumns} FROM policy.upstreams WHERE tenant = $1 ORDER BY slug`,
    [tenant],
  );
  return rows.map(toUpstreamRow);
}

/** Writes all settable fields and bumps the version; undefined when the row is gone. */
export async function updateUpstream(
  tx: Queryable,
  tenant: string,
  slug: string,
  fields: UpstreamFields,
  now: Date,
): Promise<UpstreamRow | undefined> {
  const { rows } = await tx.query<RawUpstreamRow>(
    `UPDATE policy.upstreams SET display_name = $3, origin = $4, base_path = $5,
       credential = $6, request_timeout_ms = $7, max_request_body_bytes = $8, audit_mode = $9,
       forward_cookies = $10, version = version + 1, update_time = $11
     WHERE tenant = $1 AND slug = $2
     RETURNING ${upstreamColumns}`,
    [
      tenant,
      slug,
      fields.displayName,
      fields.origin,
      fields.basePath,
      fields.credential,
      fields.requestTimeoutMs,
      fields.maxRequestBodyBytes,
      fields.auditMode,
      fields.forwardCookies,
      now,
    ],
  );
  return rows[0] === undefined ? undefined : toUpstreamRow(rows[0]);
}

/** Deletes an upstream; returns its last version, or undefined when there was none. */
export async function deleteUpstream(
  tx: Queryable,
  tenant: string,
  slug: string,
): Promise<number | undefined> {
  const { rows } = await tx.query<{ version: number | string }>(
    "DELETE FROM policy.upstreams WHERE tenant = $1 AND slug = $2 RETURNING version",
    [tenant, slug],
  );
  return rows[0] === undefined ? undefined : Number(rows[0].version);
}

/** A row of policy.policy_sets; `rules` is the proto JSON of each Rule. */
export interface PolicySetRow {
  tenant: string;
  version: number;
  rules: unknown[];
  author: string;
  createTime: Date;
}

interface RawPolicySetRow {
  tenant: string;
  version: number | string;
  rules: unknown[];
  author: string;
  create_time: Date;
}

const policySetColumns = "tenant, version, rules, author, create_time";

function toPolicySetRow(raw: RawPolicySetRow): PolicySetRow {
  return {
    tenant: raw.tenant,
    version: Number(raw.version),
    rules: raw.rules,
    author: raw.author,
    createTime: raw.create_time,
  };
}

/** The current version number of a tenant's rule set; 0 when it never wrote one. */
export async function currentPolicyVersion(q: Queryable, tenant: string): Promise<number> {
  const { rows } = await q.query<{ version: number | string | null }>(
    "SELECT max(version) AS version FROM policy.policy_sets WHERE tenant = $1",
    [tenant],
  );
  return Number(rows[0]?.version ?? 0);
}

/** One version of a tenant's rule set, or the current one when `version` is 0. */
export async function getPolicySet(
  q: Queryable,
  tenant: string,
  version: number,
): Promise<PolicySetRow | undefined> {
  const { rows } =
    version === 0
      ? await q.query<RawPolicySetRow>(
          `SELECT ${policySetColumns} FROM policy.policy_sets WHERE tenant = $1
           ORDER BY version DESC LIMIT 1`,
          [tenant],
        )
      : await q.query<RawPolicySetRow>(
          `SELECT ${policySetColumns} FROM policy.policy_sets WHERE tenant = $1 AND version = $2`,
          [tenant, version],
        );
  return rows[0] === undefined ? undefined : toPolicySetRow(rows[0]);
}

/**
 * Inserts a version. Returns undefined when that version already exists: another writer
 * committed it first (the primary key serializes concurrent PutPolicySet calls).
 */
export async function insertPolicySet(
  tx: Queryable,
  row: PolicySetRow,
): Promise<PolicySetRow | undefined> {
  const { rows } = await tx.query<RawPolicySetRow>(
    `INSERT INTO policy.policy_sets (tenant, version, rules, author, create_time)
     VALUES ($1, $2, $3::jsonb, $4, $5)
     ON CONFLICT (tenant, version) DO NOTHING
     RETURNING ${policySetColumns}`,
    [row.tenant, row.version, JSON.stringify(row.rules), row.author, row.createTime],
  );
  return rows[0] === undefined ? undefined : toPolicySetRow(rows[0]);
}

/** A page of versions, newest first, starting below `beforeVersion`. */
export async function listPolicySets(
  q: Queryable,
  tenant: string,
  options: { beforeVersion?: number; limit: number },
): Promise<PolicySetRow[]> {
  const { rows } = await q.query<RawPolicySetRow>(
    `SELECT ${policySetColumns} FROM policy.policy_sets
     WHERE tenant = $1 AND version < $2 ORDER BY version DESC LIMIT $3`,
    [tenant, options.beforeVersion ?? Number.MAX_SAFE_INTEGER, options.limit],
  );
  return rows.map(toPolicySetRow);
}
