import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { generateAdminKey } from "../../libs/auth/index.ts";
import { clusterEnv } from "../fixtures/cluster-env.ts";
import { type LatchkeyProcess, startLatchkey } from "../fixtures/processes.ts";
import { runProxyScenario } from "../fixtures/scenario.ts";
import { skipUnless, testBus, testDatabase } from "../fixtures/services.ts";

const cli = fileURLToPath(new URL("../../cli/latchkey.ts", import.meta.url));

// Cluster mode: the five components as separate OS processes on real PostgreSQL and real
// NATS JetStream, talking gRPC to each other with the gateway's service identity.
test("cluster mode: five processes on PostgreSQL and NATS, end to end", {
  skip: await skipUnless("postgres", "nats"),
}, async (t) => {
  const database = await testDatabase();
  const nats = await testBus();
  const processes: LatchkeyProcess[] = [];
  const adminKey = generateAdminKey();
  const env = clusterEnv(
    { databaseUrl: database.url, natsUrl: nats.url, namespace: nats.namespace },
    adminKey,
  );
  try {
    // `latchkey migrate` as a deployment would run it (a Kubernetes Job) before the services.
    const migrated = await promisify(execFile)(process.execPath, [cli, "migrate"], {
      env: { ...process.env, ...env },
    });
    assert.match(migrated.stdout, /migrated audit/);

    const services = await Promise.all(
      (["token", "policy", "vault", "audit"] as const).map((name) =>
        startLatchkey(["run", name], env, ["rpc"]),
      ),
    );
    processes.push(...services);
    const [token, policy, vault, audit] = services.map((p) => p.urls.rpc as string) as [
      string,
      string,
      string,
      string,
    ];
    const gateway = await startLatchkey(
      ["run", "gateway"],
      { ...env, LATCHKEY_TOKEN_URL: token, LATCHKEY_POLICY_URL: policy, LATCHKEY_VAULT_URL: vault },
      ["gateway"],
    );
    processes.push(gateway);

    const result = await runProxyScenario({
      rpc: { token, policy, vault, audit },
      gatewayUrl: gateway.urls.gateway as string,
      adminKey,
      tenant: "cluster",
    });
    t.diagnostic(`revocation visible at the gateway after ${result.revokedAfterMs.toFixed(1)} ms`);
    assert.equal(new Set(result.traceIds).size, 2, "each request has its own trace");
  } finally {
    const codes = await Promise.all(processes.map((p) => p.stop()));
    await nats.close();
    await database.close();
    assert.deepEqual(
      codes,
      processes.map(() => 0),
      "every process exits cleanly on SIGTERM",
    );
  }
});
