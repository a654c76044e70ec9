import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { componentLogger, createLogger } from "./index.ts";

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

test("a component's lines name it once, whether or not the process logger names it already", async () => {
  // `latchkey run all` (the process logger names no component) and `latchkey run gateway`.
  for (const processComponent of [undefined, "gateway"]) {
    const out = new PassThrough();
    const lines: string[] = [];
    out.on("data", (chunk: Buffer) => lines.push(chunk.toString()));
    const root = createLogger({
      ...(processComponent !== undefined && { component: processComponent }),
      destination: out,
    });
    componentLogger(root, "gateway").info("hello");
    // Under `run all` every component names itself; `run gateway` has only the gateway.
    if (processComponent === undefined) componentLogger(root, "token").info("hello");
    await new Promise((resolve) => setImmediate(resolve));
    const [gateway, token] = lines.join("").trim().split("\n") as [string, string | undefined];
    assert.equal(gateway.match(/"component":/g)?.length, 1, gateway);
    assert.equal((JSON.parse(gateway) as { component: string }).component, "gateway");
    if (token !== undefined) {
      assert.equal(token.match(/"component":/g)?.length, 1, token);
      assert.equal((JSON.parse(token) as { component: string }).component, "token");
    }
  }
});
