/**
 * The "bare Node" target: a single-process node:http + undici proxy (bare-proxy-process.ts).
 */
import { fileURLToPath } from "node:url";
import { startNodeChild } from "./child.ts";
import type { Target } from "./target.ts";

const script = fileURLToPath(new URL("./bare-proxy-process.ts", import.meta.url));

/** Name of the bare Node target; the report divides by its throughput ("÷ bare"). */
export const BARE_TARGET_NAME = "bare-node";

/** node:http server + undici Pool, header injection only, one process pinned to the server core(s). */
export const bareProxyTarget: Target = {
  name: BARE_TARGET_NAME,
  description:
    "client -> node:http + undici Pool (injects credential, nothing else, 1 process) -> upstream",
  async start({ upstream, serverCores }) {
    const { child, ready } = await startNodeChild<{ port: number }>(script, [], {
      cores: serverCores,
      env: {
        ...process.env,
        UPSTREAM_URL: upstream.baseUrl,
        UPSTREAM_AUTHORIZATION: upstream.credential.value,
      },
    });
    return {
      baseUrl: `http://127.0.0.1:${ready.port}`,
      headers: {},
      pids: () => [child.pid],
      stop: () => child.stop(),
    };
  },
};
