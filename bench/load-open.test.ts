import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runOpenLoop } from "./load-open.ts";

test("open loop: the lead-in is sent on the timetable but only the measured requests are recorded", async () => {
  let served = 0;
  let refused = 0;
  const server = createServer((req, res) => {
    served++;
    if (req.headers.authorization !== "Bearer t") refused++;
    res.end("{}");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const tmpDir = mkdtempSync(join(tmpdir(), "latchkey-open-loop-"));
  try {
    const result = await runOpenLoop(
      {
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        route: { name: "get-json", method: "GET", path: "/json", headers: {} },
        headers: { authorization: "Bearer t" },
        durationS: 0.5,
        leadInS: 1,
        rate: 100,
        maxConnections: 8,
        spin: false,
      },
      { tmpDir, id: "lead-in" },
    );
    assert.equal(result.scheduled, 50);
    assert.equal(result.completed, 50);
    assert.equal(result.latency.count, 50);
    assert.equal(result.errors, 0);
    // The measured part alone: half a second, not the second and a half the timetable ran.
    assert.ok(result.durationS >= 0.49 && result.durationS < 1.2, `durationS ${result.durationS}`);
    // 32 pre-warm requests (connections), 100 of lead-in, 50 measured.
    assert.equal(served, 32 + 100 + 50);
    assert.equal(refused, 0);
  } finally {
    server.close();
    rmSync(tmpDir, { recursive: true, force: true });
  }
});
