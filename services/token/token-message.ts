import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Token, TokenSchema, TokenState } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import { formatName } from "../../libs/names/index.ts";
import type { TokenRow } from "./store.ts";

/** The resource name of a token: `tenants/{tenant}/tokens/{id}`. */
export function tokenName(tenant: string, id: string): string {
  return formatName(tenant, "tokens", id);
}

/** The etag of a stored version: opaque to callers, compared as a string. */
export function etagOf(version: number): string {
  return `v${version}`;
}

/** Builds the API view of a stored token. There is no secret to leave out: none is stored. */
export function toTokenMessage(row: TokenRow): Token {
  return create(TokenSchema, {
    name: tokenName(row.tenant, row.id),
    displayName: row.displayName,
    subject: row.subject,
    attributes: row.attributes,
    allowedUpstreams: row.allowedUpstreams,
    expireTime: row.expireTime ? timestampFromDate(row.expireTime) : undefined,
    state: row.state === "revoked" ? TokenState.REVOKED : TokenState.ACTIVE,
    displayPrefix: row.displayPrefix,
    createTime: timestampFromDate(row.createTime),
    updateTime: timestampFromDate(row.updateTime),
    revokeTime: row.revokeTime ? timestampFromDate(row.revokeTime) : undefined,
    etag: etagOf(row.version),
  });
}
