/**
 * The "direct" target: clients call the upstream themselves, carrying the real credential.
 * It is the ceiling of the table; every proxy's added latency is measured against it.
 */
import type { Target } from "./target.ts";

/** Name of the direct target; the report uses it as the reference for "added latency". */
export const DIRECT_TARGET_NAME = "direct";

/** Load goes straight to the upstream with the upstream credential. */
export const directTarget: Target = {
  name: DIRECT_TARGET_NAME,
  description: "client -> upstream, client sends the upstream credential itself (the limit)",
  async start({ upstream }) {
    return {
      baseUrl: upstream.baseUrl,
      headers: { [upstream.credential.name]: upstream.credential.value },
      // The upstream is not a proxy; its memory is not a proxy cost.
      pids: () => [],
      stop: async () => {},
    };
  },
};
