import assert from "node:assert/strict";
import { test } from "node:test";
import { isId } from "../../libs/ids/index.ts";
import { createIdSource } from "./request-ids.ts";

test("ids have the shapes their consumers check", () => {
  const ids = createIdSource();
  const now = Date.now();
  assert.ok(isId("request", ids.requestId(now)));
  assert.ok(isId("event", ids.eventId(now)));
  assert.match(ids.traceId(), /^[0-9a-f]{32}$/);
  assert.match(ids.spanId(), /^[0-9a-f]{16}$/);
});

test("request ids sort by time", () => {
  const ids = createIdSource();
  const times = [0, 1, 31, 32, 1_767_225_600_000, 1_767_225_600_001, 2 ** 47];
  const made = times.map((ms) => ids.requestId(ms));
  assert.deepEqual([...made].sort(), made);
});

test("ids stay distinct across many refills of the randomness pool", () => {
  const ids = createIdSource();
  const now = Date.now();
  const seen = new Set<string>();
  // 8 KiB of randomness a refill; this draws about 40 refills' worth.
  for (let i = 0; i < 10_000; i++) {
    for (const id of [ids.requestId(now), ids.eventId(now), ids.traceId(), ids.spanId()]) {
      assert.ok(!seen.has(id), `repeated id ${id}`);
      seen.add(id);
    }
  }
  assert.equal(seen.size, 40_000);
});
