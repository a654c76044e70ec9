import assert from "node:assert/strict";
import { test } from "node:test";
import { decodePageToken, encodePageToken, pageSize } from "./index.ts";

test("page sizes: 0 is the default, large ones are capped, negative ones refused", () => {
  assert.equal(pageSize(0), 50);
  assert.equal(pageSize(0, 100), 100);
  assert.equal(pageSize(20), 20);
  assert.equal(pageSize(5000), 1000);
  assert.throws(() => pageSize(-1), /page_size/);
});

test("page tokens round-trip and refuse anything this server did not issue", () => {
  const token = encodePageToken({ id: "tok_9", revoked: 0 });
  assert.deepEqual(decodePageToken(token, ["id", "revoked"]), { id: "tok_9", revoked: 0 });
  assert.equal(decodePageToken("", ["id"]), undefined);
  assert.throws(() => decodePageToken("not-base64-json", ["id"]), /page_token/);
  assert.throws(() => decodePageToken(encodePageToken({ other: 1 }), ["id"]), /page_token/);
});
