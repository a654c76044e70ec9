/**
 * Open-loop latency at a fixed request rate (see load-open-process.ts for the method). The
 * generator runs in its own process, pinned to the load-generator core when there is one.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runNodeChild } from "./child.ts";
import { assertLoopback, type OpenLoopResult, type OpenLoopSpec } from "./load-spec.ts";

const script = fileURLToPath(new URL("./load-open-process.ts", import.meta.url));

/** Runs one open-loop measurement and returns its result. */
export async function runOpenLoop(
  spec: OpenLoopSpec,
  options: { cores?: string; tmpDir: string; id: string },
): Promise<OpenLoopResult> {
  assertLoopback(spec.baseUrl);
  const specPath = join(options.tmpDir, `open-${options.id}.json`);
  writeFileSync(specPath, JSON.stringify(spec));
  // Lead-in + duration + pre-warm + the generator's 5 s drain timeout + process start-up.
  const timeoutMs = (spec.leadInS + spec.durationS) * 1000 + 20_000;
  return runNodeChild<OpenLoopResult>(script, [specPath], { cores: options.cores, timeoutMs });
}
