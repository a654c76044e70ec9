/**
 * Latchkey installations the benchmark starts: embedded (`latchkey run all`, one process)
 * and cluster mode (`latchkey migrate`, then `latchkey run token|policy|vault|audit` and one
 * or more `latchkey run gateway`, each its own OS process, on PostgreSQL and NATS).
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { generateAdminKey } from "../libs/auth/index.ts";
import { clusterEnv } from "../test/fixtures/cluster-env.ts";
import { embeddedEnv } from "../test/fixtures/processes.ts";
import {
  type AdminClients,
  adminClients,
  type ClusterStorage,
  createClusterStorage,
  embeddedAdminKey,
  gatewayNodeArgs,
  type LatchkeyChild,
  runLatchkey,
  startLatchkey,
} from "./latchkey.ts";
import { freePort } from "./ports.ts";

/** A running installation: its gateway URL(s), admin clients and how to stop it. */
export interface Installation {
  /** One base URL per gateway process (several processes may share one URL with reusePort). */
  gatewayUrls: string[];
  /** Pids of the gateway processes (the request path), for the memory columns. */
  gatewayPids: number[];
  admin: AdminClients;
  stop(): Promise<void>;
}

/** Options shared by both modes. */
export interface InstallationOptions {
  /**
   * Cores for the process(es) serving requests (the server cores of the plan): the embedded
   * process, or the gateways.
   */
  cores: string | undefined;
  /** Extra environment for the gateway (e.g. LATCHKEY_GATEWAY_VERIFY_CACHE_MAX_MS). */
  gatewayEnv?: Record<string, string>;
}

/**
 * `latchkey run all` with its data (PGlite) under `dataDir`, the in-process bus, ports 0.
 * The gateway shares the process with the services, so `gatewayPids` is that process.
 */
export async function startEmbedded(
  dataDir: string,
  options: InstallationOptions,
): Promise<Installation> {
  mkdirSync(dataDir, { recursive: true });
  const proc = await startLatchkey(
    ["run", "all"],
    { ...embeddedEnv(dataDir), ...options.gatewayEnv },
    ["rpc", "gateway"],
    { cores: options.cores, nodeArgs: gatewayNodeArgs() },
  );
  const rpc = proc.urls.rpc as string;
  return {
    gatewayUrls: [proc.urls.gateway as string],
    gatewayPids: [proc.child.pid],
    admin: adminClients({ token: rpc, policy: rpc, vault: rpc }, embeddedAdminKey(dataDir)),
    stop: () => proc.child.stop(10_000),
  };
}

/** How cluster-mode gateways listen. */
export type GatewayLayout =
  /** `count` processes on one port with LATCHKEY_GATEWAY_REUSE_PORT=true (the kernel spreads connections). */
  | { kind: "shared-port"; count: number }
  /** `count` processes, each on its own port (so a client can address each one). */
  | { kind: "own-ports"; count: number };

/**
 * Cluster mode on a fresh PostgreSQL database and NATS namespace (both removed on stop):
 * `latchkey migrate`, the four services, then the gateways as the layout says.
 */
export async function startCluster(
  layout: GatewayLayout,
  options: InstallationOptions,
): Promise<Installation> {
  const storage: ClusterStorage = await createClusterStorage();
  const adminKey = generateAdminKey();
  const env = clusterEnv(storage, adminKey);
  const processes: LatchkeyChild[] = [];
  const stopAll = async () => {
    // Gateways first (they call the services), then the services; in parallel within each.
    const gateways = processes.filter((p) => p.urls.gateway !== undefined);
    await Promise.all(gateways.map((p) => p.child.stop(10_000)));
    await Promise.all(processes.filter((p) => !gateways.includes(p)).map((p) => p.child.stop()));
    await storage.drop();
  };
  try {
    await runLatchkey(["migrate"], env);
    // The services are the control plane and the audit pipeline, which a deployment runs
    // beside the gateways rather than on their cores: unpinned, like PostgreSQL and NATS, so
    // the row measures the gateway process against the bare proxy process (their CPU shows
    // in the `other CPU` column).
    const services = await Promise.all(
      (["token", "policy", "vault", "audit"] as const).map((name) =>
        startLatchkey(["run", name], env, ["rpc"]),
      ),
    );
    processes.push(...services);
    const [token, policy, vault] = services.map((p) => p.urls.rpc as string) as [
      string,
      string,
      string,
    ];
    const gatewayEnv: Record<string, string> = {
      ...env,
      LATCHKEY_TOKEN_URL: token,
      LATCHKEY_POLICY_URL: policy,
      LATCHKEY_VAULT_URL: vault,
      ...options.gatewayEnv,
    };
    // SO_REUSEPORT needs the port up front: every process binds the same number.
    const shared = layout.kind === "shared-port" ? String(await freePort()) : undefined;
    const gateways = await Promise.allSettled(
      Array.from({ length: layout.count }, () =>
        startLatchkey(
          ["run", "gateway"],
          shared === undefined
            ? gatewayEnv
            : {
                ...gatewayEnv,
                LATCHKEY_GATEWAY_PORT: shared,
                LATCHKEY_GATEWAY_REUSE_PORT: layout.count > 1 ? "true" : "false",
              },
          ["gateway"],
          { cores: options.cores, nodeArgs: gatewayNodeArgs() },
        ),
      ),
    );
    for (const result of gateways) if (result.status === "fulfilled") processes.push(result.value);
    const failed = gateways.find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await stopAll();
    throw error;
  }
  const gateways = processes.filter((p) => p.urls.gateway !== undefined);
  return {
    gatewayUrls: gateways.map((p) => p.urls.gateway as string),
    gatewayPids: gateways.map((p) => p.child.pid),
    admin: adminClients(
      {
        token: processes[0]?.urls.rpc as string,
        policy: processes[1]?.urls.rpc as string,
        vault: processes[2]?.urls.rpc as string,
      },
      adminKey,
    ),
    stop: stopAll,
  };
}

/** Where embedded mode keeps its data for one target. */
export function embeddedDataDir(tmpDir: string): string {
  return join(tmpDir, "latchkey-data");
}
