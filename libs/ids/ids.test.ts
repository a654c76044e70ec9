import assert from "node:assert/strict";
import { test } from "node:test";
import { idPrefixes, isId, newId } from "./index.ts";

test("ids carry their kind's prefix and 26 Crockford base32 characters", () => {
  for (const kind of Object.keys(idPrefixes) as (keyof typeof idPrefixes)[]) {
    const id = newId(kind);
    assert.ok(id.startsWith(`${idPrefixes[kind]}_`), id);
    assert.ok(isId(kind, id), id);
  }
  assert.equal(isId("token", newId("credential")), false);
  assert.equal(
    isId("token", "tok_ILOU0000000000000000000000"),
    false,
    "I, L, O, U are not in the alphabet",
  );
});

test("ids sort by creation time, and are unique within a millisecond", () => {
  const earlier = newId("event", 1_700_000_000_000);
  const later = newId("event", 1_700_000_000_001);
  assert.ok(earlier < later);
  const same = new Set(Array.from({ length: 1000 }, () => newId("event", 1_700_000_000_000)));
  assert.equal(same.size, 1000);
});
