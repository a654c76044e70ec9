import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { embeddedEnv, startLatchkey } from "../fixtures/processes.ts";
import { adminClients, runProxyScenario } from "../fixtures/scenario.ts";

const dataDir = mkdtempSync(join(tmpdir(), "latchkey-embedded-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

// The README's first command (`latchkey run all`) on its embedded defaults: PGlite in the
// data directory and the in-process bus, every component in one OS process.
const env = embeddedEnv(dataDir);

test("embedded mode: the proxy scenario end to end, and data survives a restart", async (t) => {
  const first = await startLatchkey(["run", "all"], env, ["rpc", "gateway"]);
  const adminKey = readFileSync(join(dataDir, "admin-key"), "utf8").trim();
  const target = (urls: Record<string, string>) => ({
    rpc: {
      token: urls.rpc as string,
      policy: urls.rpc as string,
      vault: urls.rpc as string,
      audit: urls.rpc as string,
    },
    gatewayUrl: urls.gateway as string,
    adminKey,
    tenant: "embedded",
  });
  try {
    // A second instance on the same data directory must refuse to open the embedded database.
    await assert.rejects(
      startLatchkey(["run", "all"], env, ["rpc", "gateway"]),
      /is in use by another latchkey process \(pid \d+ on /,
    );
    const result = await runProxyScenario(target(first.urls));
    t.diagnostic(`revocation visible at the gateway after ${result.revokedAfterMs.toFixed(1)} ms`);
    assert.equal(result.traceIds.length, 2);
  } finally {
    assert.equal(await first.stop(), 0, "a clean exit on SIGTERM");
  }

  const second = await startLatchkey(["run", "all"], env, ["rpc", "gateway"]);
  try {
    assert.equal(
      readFileSync(join(dataDir, "admin-key"), "utf8").trim(),
      adminKey,
      "the admin key is kept",
    );
    const clients = adminClients(target(second.urls));
    const { upstreams } = await clients.policy.listUpstreams({ parent: "tenants/embedded" });
    assert.deepEqual(
      upstreams.map((u) => u.name),
      ["tenants/embedded/upstreams/echo"],
    );
    const { tokens } = await clients.token.listTokens({
      parent: "tenants/embedded",
      showRevoked: true,
    });
    assert.equal(tokens.length, 1, "the revoked token is still on record");
  } finally {
    assert.equal(await second.stop(), 0);
  }
});
