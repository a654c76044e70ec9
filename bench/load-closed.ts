/**
 * Closed-loop throughput with the built-in Node generator, used when wrk is not installed
 * (or with `--load node`). It needs more CPU per request than wrk, so on a 2-core machine its
 * figures for the fastest targets are lower; the report names the tool used.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runNodeChild } from "./child.ts";
import { assertLoopback, type ClosedLoopResult, type ClosedLoopSpec } from "./load-spec.ts";

const script = fileURLToPath(new URL("./load-closed-process.ts", import.meta.url));

/** Runs one closed-loop measurement with the Node generator in its own process. */
export async function runNodeClosedLoop(
  spec: ClosedLoopSpec,
  options: { cores?: string; tmpDir: string; id: string },
): Promise<ClosedLoopResult> {
  assertLoopback(spec.baseUrl);
  const specPath = join(options.tmpDir, `closed-${options.id}.json`);
  writeFileSync(specPath, JSON.stringify(spec));
  return runNodeChild<ClosedLoopResult>(script, [specPath], {
    cores: options.cores,
    timeoutMs: spec.durationS * 1000 + 20_000,
  });
}
