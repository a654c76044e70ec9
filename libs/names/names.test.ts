import assert from "node:assert/strict";
import { test } from "node:test";
import { DomainError } from "../errors/index.ts";
import { formatName, isTenantId, parseName, parseParent, unknownTenant } from "./index.ts";

test("parent and resource names round-trip", () => {
  assert.equal(parseParent("tenants/acme"), "acme");
  assert.deepEqual(parseName("tenants/acme/tokens/tok_1", "tokens"), {
    tenant: "acme",
    id: "tok_1",
  });
  assert.equal(formatName("acme", "upstreams", "stripe"), "tenants/acme/upstreams/stripe");
});

test("malformed names are InvalidArgument, naming the expected shape", () => {
  for (const bad of [
    "",
    "acme",
    "tenants/",
    "tenants/Acme",
    "tenants/acme/x",
    "projects/acme",
    "tenants/-acme",
  ]) {
    assert.throws(
      () => parseParent(bad),
      (err: unknown) => err instanceof DomainError && err.kind === "invalid_argument",
      bad,
    );
  }
  assert.throws(
    () => parseName("tenants/acme/upstreams/x", "tokens"),
    /tenants\/\{tenant\}\/tokens\/\{id\}/,
  );
  assert.throws(() => parseName("tenants/acme/tokens/../x", "tokens"));
});

test("the unknown pseudo-tenant is only accepted where asked for, and is never a tenant id", () => {
  assert.equal(isTenantId(unknownTenant), false);
  assert.throws(() => parseParent(`tenants/${unknownTenant}`));
  assert.equal(
    parseParent(`tenants/${unknownTenant}`, { allowUnknownTenant: true }),
    unknownTenant,
  );
});
