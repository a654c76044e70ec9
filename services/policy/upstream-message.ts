import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AuditMode,
  type Upstream,
  UpstreamSchema,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { formatName } from "../../libs/names/index.ts";
import type { UpstreamRow } from "./store.ts";

/** `tenants/{tenant}/upstreams/{slug}`. */
export function upstreamName(tenant: string, slug: string): string {
  return formatName(tenant, "upstreams", slug);
}

/** The etag of an upstream version: opaque to clients, compared as a string. */
export function etagOf(version: number): string {
  return `v${version}`;
}

/** Builds the Upstream message for a stored row. */
export function toUpstreamMessage(row: UpstreamRow): Upstream {
  return create(UpstreamSchema, {
    name: upstreamName(row.tenant, row.slug),
    displayName: row.displayName,
    origin: row.origin,
    basePath: row.basePath,
    credential: row.credential,
    requestTimeout: durationFromMs(row.requestTimeoutMs),
    maxRequestBodyBytes: BigInt(row.maxRequestBodyBytes),
    auditMode: row.auditMode === "sync" ? AuditMode.SYNC : AuditMode.ASYNC,
    forwardCookies: row.forwardCookies,
    createTime: timestampFromDate(row.createTime),
    updateTime: timestampFromDate(row.updateTime),
    etag: etagOf(row.version),
  });
}
