import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { MigrateOptions, Queryable } from "../../libs/db/types.ts";
import {
  type InjectionScheme,
  InjectionSchemeSchema,
} from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { SealedSecret } from "./envelope.ts";

/**
 * Named SQL for the `vault` schema. Every query that touches one tenant's data carries
 * `tenant = $1`, so a bug elsewhere cannot read or change another tenant's credential. The
 * only queries without a tenant are KEK rotation's, which re-wrap every row by design.
 */

/** The vault's schema and migrations, with the standard outbox table for change events. */
export const migrations: MigrateOptions = {
  schema: "vault",
  dir: new URL("./migrations/", import.meta.url),
  outbox: true,
};

/** A credential's metadata as the service sees it. */
export interface CredentialRow {
  tenant: string;
  id: string;
  displayName: string;
  scheme: InjectionScheme;
  allowedOrigins: string[];
  /** 0 when every version is disabled. */
  currentVersion: number;
  requestId: string | null;
  createTime: Date;
  updateTime: Date;
}

/** A version's metadata (no key material). */
export interface VersionRow {
  version: number;
  state: VersionState;
  createTime: Date;
}

/** Whether a version can be resolved. */
export type VersionState = "enabled" | "disabled";

interface RawCredentialRow {
  tenant: string;
  id: string;
  display_name: string;
  scheme: JsonValue;
  allowed_origins: string[];
  current_version: number;
  request_id: string | null;
  create_time: Date;
  update_time: Date;
}

interface RawSealedRow {
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  wrapped_key: Uint8Array;
  wrapped_nonce: Uint8Array;
  kek_version: number;
}

const credentialColumns = `tenant, id, display_name, scheme, allowed_origins, current_version,
  request_id, create_time, update_time`;

function toCredential(raw: RawCredentialRow): CredentialRow {
  return {
    tenant: raw.tenant,
    id: raw.id,
    displayName: raw.display_name,
    scheme: fromJson(InjectionSchemeSchema, raw.scheme),
    allowedOrigins: raw.allowed_origins,
    currentVersion: Number(raw.current_version),
    requestId: raw.request_id,
    createTime: raw.create_time,
    updateTime: raw.update_time,
  };
}

function toSealed(raw: RawSealedRow): SealedSecret {
  return {
    nonce: raw.nonce,
    ciphertext: raw.ciphertext,
    wrappedKey: raw.wrapped_key,
    wrappedNonce: raw.wrapped_nonce,
    kekVersion: Number(raw.kek_version),
  };
}

/** Values of a new credential row. */
export interface NewCredential {
  tenant: string;
  id: string;
  displayName: string;
  scheme: InjectionScheme;
  allowedOrigins: string[];
  currentVersion: number;
  requestId: string | null;
  now: Date;
}

const insertCredentialSql = `
INSERT INTO vault.credentials (tenant, id, display_name, scheme, allowed_origins,
  current_version, request_id, create_time, update_time)
VALUES ($1, $2, $3, $4::jsonb, $5::text[], $6, $7, $8, $8)
ON CONFLICT (tenant, request_id) WHERE request_id IS NOT NULL DO NOTHING
RETURNING ${credentialColumns}`;

/**
 * Inserts a credential. Returns undefined when another credential already holds (tenant,
 * request_id): a concurrent retry of the same CreateCredential won. A taken id raises the
 * database's unique violation on the primary key.
 */
export async function insertCredential(
  tx: Queryable,
  credential: NewCredential,
): Promise<CredentialRow | undefined> {
  const { rows } = await tx.query<RawCredentialRow>(insertCredentialSql, [
    credential.tenant,
    credential.id,
    credential.displayName,
    JSON.stringify(toJson(InjectionSchemeSchema, credential.scheme)),
    credential.allowedOrigins,
    credential.currentVersion,
    credential.requestId,
    credential.now,
  ]);
  return rows[0] && toCredential(rows[0]);
}

const selectCredentialSql = `
SELECT ${credentialColumns} FROM vault.credentials WHERE tenant = $1 AND id = $2`;

/**
 * One credential's metadata, or undefined. With `forUpdate` the row stays locked until the
 * transaction ends, which serializes version changes of one credential.
 */
export async function selectCredential(
  q: Queryable,
  tenant: string,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<CredentialRow | undefined> {
  const sql = options.forUpdate ? `${selectCredentialSql} FOR UPDATE` : selectCredentialSql;
  const { rows } = await q.query<RawCredentialRow>(sql, [tenant, id]);
  return rows[0] && toCredential(rows[0]);
}

const selectByRequestIdSql = `
SELECT ${credentialColumns} FROM vault.credentials WHERE tenant = $1 AND request_id = $2`;

/** The credential a CreateCredential with this idempotency key created, if any. */
export async function selectCredentialByRequestId(
  q: Queryable,
  tenant: string,
  requestId: string,
): Promise<CredentialRow | undefined> {
  const { rows } = await q.query<RawCredentialRow>(selectByRequestIdSql, [tenant, requestId]);
  return rows[0] && toCredential(rows[0]);
}

const listCredentialsSql = `
SELECT ${credentialColumns} FROM vault.credentials
WHERE tenant = $1 AND ($2::text IS NULL OR id > $2)
ORDER BY id
LIMIT $3`;

/** A page of a tenant's credentials in id order, starting after `afterId`. */
export async function listCredentials(
  q: Queryable,
  tenant: string,
  afterId: string | undefined,
  limit: number,
): Promise<CredentialRow[]> {
  const { rows } = await q.query<RawCredentialRow>(listCredentialsSql, [
    tenant,
    afterId ?? null,
    limit,
  ]);
  return rows.map(toCredential);
}

const deleteCredentialSql = `DELETE FROM vault.credentials WHERE tenant = $1 AND id = $2`;

/**
 * Deletes a credential; its versions go with it (ON DELETE CASCADE). False when there was
 * no such credential.
 */
export async function deleteCredential(
  tx: Queryable,
  tenant: string,
  id: string,
): Promise<boolean> {
  const { rowCount } = await tx.query(deleteCredentialSql, [tenant, id]);
  return rowCount > 0;
}

const setCurrentVersionSql = `
UPDATE vault.credentials SET current_version = $3, update_time = $4
WHERE tenant = $1 AND id = $2
RETURNING ${credentialColumns}`;

/**
 * Sets a credential's current version (0: none) and its update time, and returns the row.
 * Passing the version it already has records a change to its versions.
 */
export async function setCurrentVersion(
  tx: Queryable,
  tenant: string,
  id: string,
  version: number,
  now: Date,
): Promise<CredentialRow | undefined> {
  const { rows } = await tx.query<RawCredentialRow>(setCurrentVersionSql, [
    tenant,
    id,
    version,
    now,
  ]);
  return rows[0] && toCredential(rows[0]);
}

const insertVersionSql = `
INSERT INTO vault.credential_versions (tenant, credential_id, version, state, nonce, ciphertext,
  wrapped_key, wrapped_nonce, kek_version, create_time)
VALUES ($1, $2, $3, 'enabled', $4, $5, $6, $7, $8, $9)`;

/** Inserts an enabled version with its sealed material. */
export async function insertVersion(
  tx: Queryable,
  tenant: string,
  credentialId: string,
  version: number,
  sealed: SealedSecret,
  now: Date,
): Promise<void> {
  await tx.query(insertVersionSql, [
    tenant,
    credentialId,
    version,
    sealed.nonce,
    sealed.ciphertext,
    sealed.wrappedKey,
    sealed.wrappedNonce,
    sealed.kekVersion,
    now,
  ]);
}

const disableVersionSql = `
UPDATE vault.credential_versions SET state = 'disabled'
WHERE tenant = $1 AND credential_id = $2 AND version = $3`;

/** Disables one version of a credential. */
export async function disableVersion(
  tx: Queryable,
  tenant: string,
  credentialId: string,
  version: number,
): Promise<void> {
  await tx.query(disableVersionSql, [tenant, credentialId, version]);
}

const listVersionsSql = `
SELECT credential_id, version, state, create_time FROM vault.credential_versions
WHERE tenant = $1 AND credential_id = ANY($2::text[])
ORDER BY credential_id, version`;

/** The versions' metadata of several credentials of one tenant, oldest first, by id. */
export async function listVersions(
  q: Queryable,
  tenant: string,
  credentialIds: readonly string[],
): Promise<Map<string, VersionRow[]>> {
  const byCredential = new Map<string, VersionRow[]>(credentialIds.map((id) => [id, []]));
  if (credentialIds.length === 0) return byCredential;
  const { rows } = await q.query<{
    credential_id: string;
    version: number;
    state: VersionState;
    create_time: Date;
  }>(listVersionsSql, [tenant, credentialIds]);
  for (const row of rows) {
    byCredential.get(row.credential_id)?.push({
      version: Number(row.version),
      state: row.state,
      createTime: row.create_time,
    });
  }
  return byCredential;
}

const selectCurrentSealedSql = `
SELECT c.tenant, c.id, c.display_name, c.scheme, c.allowed_origins, c.current_version,
  c.request_id, c.create_time, c.update_time,
  v.nonce, v.ciphertext, v.wrapped_key, v.wrapped_nonce, v.kek_version
FROM vault.credentials c
LEFT JOIN vault.credential_versions v
  ON v.tenant = c.tenant AND v.credential_id = c.id AND v.version = c.current_version
  AND v.state = 'enabled'
WHERE c.tenant = $1 AND c.id = $2`;

/**
 * What ResolveCredential needs in one round trip: the credential and the sealed material
 * of its current version; `sealed` is undefined when no version is enabled.
 */
export async function selectCurrentSealed(
  q: Queryable,
  tenant: string,
  id: string,
): Promise<{ credential: CredentialRow; sealed: SealedSecret | undefined } | undefined> {
  const { rows } = await q.query<RawCredentialRow & Partial<RawSealedRow>>(selectCurrentSealedSql, [
    tenant,
    id,
  ]);
  const row = rows[0];
  if (!row) return undefined;
  const { nonce, ciphertext, wrapped_key, wrapped_nonce, kek_version } = row;
  const sealed =
    nonce && ciphertext && wrapped_key && wrapped_nonce && kek_version !== undefined
      ? toSealed({ nonce, ciphertext, wrapped_key, wrapped_nonce, kek_version })
      : undefined;
  return { credential: toCredential(row), sealed };
}

/** A sealed version somewhere in the vault, as KEK rotation walks them. */
export interface SealedVersionRow {
  tenant: string;
  credentialId: string;
  version: number;
  sealed: SealedSecret;
}

const selectWrappedByOtherKekSql = `
SELECT tenant, credential_id, version, nonce, ciphertext, wrapped_key, wrapped_nonce, kek_version
FROM vault.credential_versions
WHERE kek_version <> $1
ORDER BY tenant, credential_id, version
LIMIT $2
FOR UPDATE SKIP LOCKED`;

/**
 * Up to `limit` versions, across every tenant, whose data key is wrapped by a KEK other
 * than `kekVersion`, locked for the transaction (rows another rotation holds are skipped).
 */
export async function selectWrappedByOtherKek(
  tx: Queryable,
  kekVersion: number,
  limit: number,
): Promise<SealedVersionRow[]> {
  const { rows } = await tx.query<
    RawSealedRow & { tenant: string; credential_id: string; version: number }
  >(selectWrappedByOtherKekSql, [kekVersion, limit]);
  return rows.map((row) => ({
    tenant: row.tenant,
    credentialId: row.credential_id,
    version: Number(row.version),
    sealed: toSealed(row),
  }));
}

const updateWrappedKeySql = `
UPDATE vault.credential_versions SET wrapped_key = $4, wrapped_nonce = $5, kek_version = $6
WHERE tenant = $1 AND credential_id = $2 AND version = $3`;

/** Stores a re-wrapped data key; the material ciphertext is untouched. */
export async function updateWrappedKey(tx: Queryable, row: SealedVersionRow): Promise<void> {
  await tx.query(updateWrappedKeySql, [
    row.tenant,
    row.credentialId,
    row.version,
    row.sealed.wrappedKey,
    row.sealed.wrappedNonce,
    row.sealed.kekVersion,
  ]);
}
