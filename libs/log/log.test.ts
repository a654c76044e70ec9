import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { createLogger } from "./index.ts";

test("secret-bearing fields are redacted wherever a log call puts them", async () => {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on("data", (chunk: Buffer) => lines.push(chunk.toString()));
  const log = createLogger({ component: "test", destination: out });
  log.info(
    {
      secret: "lk_secret",
      material: { token: "sk_live" },
      headers: { authorization: "Bearer lk_x", "x-api-key": "lk_y", cookie: "s=1", accept: "*/*" },
      request: { password: "pw" },
    },
    "hello",
  );
  await new Promise((resolve) => setImmediate(resolve));
  const text = lines.join("");
  for (const secret of ["lk_secret", "sk_live", "Bearer lk_x", "lk_y", "s=1", '"pw"']) {
    assert.ok(!text.includes(secret), secret);
  }
  const entry = JSON.parse(text) as { component: string; msg: string; headers: { accept: string } };
  assert.equal(entry.component, "test");
  assert.equal(entry.headers.accept, "*/*");
});
