/**
 * Starting the benchmark upstream (see upstream-process.ts) from the orchestrator.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startNodeChild } from "./child.ts";

/** A running upstream and the credential it requires. */
export interface Upstream {
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  host: string;
  port: number;
  pid: number;
  /** The header a proxy must inject; requests without it get 401. Header name is lowercase. */
  credential: { name: "authorization"; value: string };
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL("./upstream-process.ts", import.meta.url));

/**
 * Starts the upstream in its own process on 127.0.0.1 and an ephemeral port, with a fresh
 * random credential so nothing can pass by accident (or from a previous run).
 */
export async function startUpstream(options: { cores?: string } = {}): Promise<Upstream> {
  const secret = `upstream-secret-${randomBytes(12).toString("hex")}`;
  const { child, ready } = await startNodeChild<{ port: number }>(script, [], {
    cores: options.cores,
    env: { ...process.env, UPSTREAM_SECRET: secret },
  });
  return {
    baseUrl: `http://127.0.0.1:${ready.port}`,
    host: "127.0.0.1",
    port: ready.port,
    pid: child.pid,
    credential: { name: "authorization", value: `Bearer ${secret}` },
    stop: () => child.stop(),
  };
}
