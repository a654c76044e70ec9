import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError, notFound, permissionDenied, toConnectError } from "./index.ts";

test("domain errors keep their safe message and map to the matching code", () => {
  const err = toConnectError(notFound("token tenants/acme/tokens/tok_1 not found"));
  assert.equal(err.code, Code.NotFound);
  assert.equal(err.rawMessage, "token tenants/acme/tokens/tok_1 not found");
  assert.equal(toConnectError(permissionDenied("no")).code, Code.PermissionDenied);
  assert.equal(
    toConnectError(new DomainError("resource_exhausted", "slow down")).code,
    Code.ResourceExhausted,
  );
});

test("anything else is Internal with a generic message; the cause stays for the log", () => {
  const cause = new Error("connection to postgres://user:secret@db failed");
  const err = toConnectError(cause);
  assert.equal(err.code, Code.Internal);
  assert.equal(err.rawMessage, "internal error");
  assert.equal(err.cause, cause);
  const connect = new ConnectError("already", Code.Aborted);
  assert.equal(toConnectError(connect), connect);
});
