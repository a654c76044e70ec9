/**
 * Starting Latchkey for the benchmark: `latchkey` processes (embedded or one per
 * component), the admin clients that provision a tenant for the harness's upstream, and the
 * PostgreSQL database and NATS namespace a cluster-mode row runs on.
 *
 * Everything here goes through the same doors a user does: the `latchkey` CLI as a separate
 * OS process, and the generated Connect clients over gRPC with an admin key.
 */

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Effect, PolicyService } from "../libs/gen/latchkey/policy/v1/policy_pb.js";
import { TokenService } from "../libs/gen/latchkey/token/v1/token_pb.js";
import { VaultService } from "../libs/gen/latchkey/vault/v1/vault_pb.js";
import {
  deleteNamespaceStreams,
  natsAnswers,
  postgresAnswers,
  runMaintenance,
} from "../test/fixtures/servers.ts";
import { type Child, startChild } from "./child.ts";
import type { Upstream } from "./upstream.ts";

const cli = fileURLToPath(new URL("../cli/latchkey.ts", import.meta.url));

/**
 * The Node flags the `latchkey` executable runs with: those of its `#!/usr/bin/env -S node
 * ...` line (the V8 heap settings the gateway ships with). Every Latchkey process of the
 * benchmark starts with them, as `npx latchkey` and `npm start` would.
 */
export function launcherNodeArgs(): string[] {
  const first = readFileSync(cli, "utf8").split("\n", 1)[0] ?? "";
  const match = /^#!\/usr\/bin\/env -S node((?: --?[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (match === null) throw new Error(`unexpected #! line in ${cli}: ${first}`);
  return (match[1] ?? "").trim().split(/\s+/).filter(Boolean);
}

/** Default local services, the same the test fixtures probe. */
export const BENCH_POSTGRES_URL =
  process.env.LATCHKEY_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const BENCH_NATS_URL = process.env.LATCHKEY_BENCH_NATS_URL ?? "nats://127.0.0.1:4222";

/** A started `latchkey` process and the URLs it announced. */
export interface LatchkeyChild {
  child: Child;
  /** URLs from `{"msg":"listening","kind":...,"url":...}` log lines, by kind (`rpc`, `gateway`). */
  urls: Record<string, string>;
}

/**
 * Node flags for gateway processes. BENCH_CPU_PROF=1 writes a V8 CPU profile of every
 * gateway process to BENCH_CPU_PROF_DIR (default bench/results/profiles) when it stops;
 * BENCH_GATEWAY_NODE_ARGS adds flags as given (e.g. `--max-semi-space-size=4`).
 */
export function gatewayNodeArgs(): string[] {
  const args: string[] = [];
  if (process.env.BENCH_CPU_PROF === "1") {
    const dir =
      process.env.BENCH_CPU_PROF_DIR ??
      fileURLToPath(new URL("./results/profiles/", import.meta.url));
    args.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  const extra = process.env.BENCH_GATEWAY_NODE_ARGS?.trim();
  if (extra) args.push(...extra.split(/\s+/));
  return args;
}

/**
 * Starts `node [launcher flags] [nodeArgs] cli/latchkey.ts <args>` (pinned to `cores` when
 * given) and waits until it has announced a `listening` URL for every kind in `waitFor`.
 * Later output is read and dropped so a chatty process never blocks on a full pipe.
 */
export async function startLatchkey(
  args: string[],
  env: Record<string, string>,
  waitFor: readonly string[],
  options: { cores?: string; nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<LatchkeyChild> {
  const nodeArgs = [...launcherNodeArgs(), ...(options.nodeArgs ?? [])];
  const child = startChild(process.execPath, [...nodeArgs, cli, ...args], {
    cores: options.cores,
    env: { ...process.env, LATCHKEY_LOG_LEVEL: "info", ...env },
  });
  const stdout = child.process.stdout;
  if (stdout === null) throw new Error("child stdout is not piped");
  const urls: Record<string, string> = {};
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `latchkey ${args.join(" ")} not ready after ${timeoutMs} ms: ${child.stderr().trim()}`,
            ),
          ),
        timeoutMs,
      );
      child.process.once("exit", (code) =>
        reject(
          new Error(`latchkey ${args.join(" ")} exited with ${code}: ${child.stderr().trim()}`),
        ),
      );
      createInterface({ input: stdout }).on("line", (line) => {
        let entry: { msg?: unknown; kind?: unknown; url?: unknown };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          return; // Banner lines of embedded mode are not log records.
        }
        if (
          entry.msg === "listening" &&
          typeof entry.kind === "string" &&
          typeof entry.url === "string"
        ) {
          urls[entry.kind] = entry.url;
          if (waitFor.every((kind) => urls[kind] !== undefined)) resolve();
        }
      });
    });
  } catch (error) {
    await child.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { child, urls };
}

/** Runs `latchkey <args>` to completion; rejects with its stderr when it fails. */
export async function runLatchkey(args: string[], env: Record<string, string>): Promise<void> {
  const child = startChild(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
  child.process.stdout?.resume();
  const code = await new Promise<number | null>((resolve) =>
    child.process.once("close", (c) => resolve(c)),
  );
  if (code !== 0)
    throw new Error(`latchkey ${args.join(" ")} exited with ${code}: ${child.stderr().trim()}`);
}

/** Reads the admin key embedded mode wrote to its data directory. */
export function embeddedAdminKey(dataDir: string): string {
  return readFileSync(join(dataDir, "admin-key"), "utf8").trim();
}

/** Admin clients over gRPC (HTTP/2), as a user's generated client would connect. */
export function adminClients(rpc: { token: string; policy: string; vault: string }, key: string) {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
  const transport = (baseUrl: string) => createGrpcTransport({ baseUrl, interceptors: [auth] });
  return {
    token: createClient(TokenService, transport(rpc.token)),
    policy: createClient(PolicyService, transport(rpc.policy)),
    vault: createClient(VaultService, transport(rpc.vault)),
  };
}

/** The admin clients of one installation. */
export type AdminClients = ReturnType<typeof adminClients>;

/** Tenant and upstream slug every Latchkey row uses; requests go to `<gateway>/bench/...`. */
export const BENCH_TENANT = "bench";
export const BENCH_UPSTREAM = "bench";

/** A proxy token: the secret clients send and the resource name used to revoke it. */
export interface IssuedToken {
  secret: string;
  name: string;
}

/**
 * Provisions the tenant for the harness's upstream: a bearer credential whose material is
 * the upstream's secret (the gateway sends `Authorization: Bearer <secret>`, exactly what
 * the upstream requires), bound to the upstream's origin; upstream `bench` with that origin;
 * a policy allowing every method and path on it.
 */
export async function provisionUpstream(clients: AdminClients, upstream: Upstream): Promise<void> {
  const parent = `tenants/${BENCH_TENANT}`;
  const secret = upstream.credential.value.replace(/^Bearer /, "");
  await clients.vault.createCredential({
    parent,
    credentialId: "bench-upstream",
    credential: {
      allowedOrigins: [upstream.baseUrl],
      scheme: { kind: { case: "bearer", value: {} } },
    },
    material: { kind: { case: "token", value: secret } },
  });
  await clients.policy.createUpstream({
    parent,
    upstreamId: BENCH_UPSTREAM,
    upstream: { origin: upstream.baseUrl, credential: `${parent}/credentials/bench-upstream` },
  });
  await clients.policy.putPolicySet({
    parent,
    rules: [
      {
        id: "bench-all",
        effect: Effect.ALLOW,
        upstreams: [BENCH_UPSTREAM],
        methods: [],
        paths: ["/**"],
      },
    ],
  });
}

/** Issues `count` proxy tokens, `concurrency` CreateToken calls at a time. */
export async function issueTokens(
  clients: AdminClients,
  count: number,
  concurrency = 16,
): Promise<IssuedToken[]> {
  const out: IssuedToken[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const created = await clients.token.createToken({
        parent: `tenants/${BENCH_TENANT}`,
        token: { subject: `bench-${i}` },
      });
      out[i] = { secret: created.secret, name: created.token?.name ?? "" };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/** The proxy-token header for a secret. */
export function tokenHeader(secret: string): Record<string, string> {
  return { authorization: `Bearer ${secret}` };
}

/** Why cluster mode cannot run here, or undefined when PostgreSQL and NATS both answer. */
export async function clusterSkipReason(): Promise<string | undefined> {
  if (!(await postgresAnswers(BENCH_POSTGRES_URL)))
    return `PostgreSQL not reachable at ${redact(BENCH_POSTGRES_URL)} (set LATCHKEY_BENCH_DATABASE_URL)`;
  if (!(await natsAnswers(BENCH_NATS_URL)))
    return `NATS not reachable at ${BENCH_NATS_URL} (set LATCHKEY_BENCH_NATS_URL)`;
  return undefined;
}

function redact(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString();
}

/** A fresh database plus a fresh NATS namespace; `drop()` removes both. */
export interface ClusterStorage {
  databaseUrl: string;
  natsUrl: string;
  namespace: string;
  drop(): Promise<void>;
}

/** Creates `latchkey_bench_<random>` on the bench PostgreSQL and a unique NATS namespace. */
export async function createClusterStorage(): Promise<ClusterStorage> {
  const suffix = randomBytes(5).toString("hex");
  const name = `latchkey_bench_${suffix}`;
  await runMaintenance(BENCH_POSTGRES_URL, `create database ${name}`);
  const url = new URL(BENCH_POSTGRES_URL);
  url.pathname = `/${name}`;
  const namespace = `bench${suffix}`;
  return {
    databaseUrl: url.toString(),
    natsUrl: BENCH_NATS_URL,
    namespace,
    async drop() {
      await runMaintenance(
        BENCH_POSTGRES_URL,
        `drop database if exists ${name} with (force)`,
      ).catch(() => {});
      await deleteNamespaceStreams(BENCH_NATS_URL, namespace).catch(() => {});
    },
  };
}
