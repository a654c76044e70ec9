import { commonEnv, loadEnv } from "../libs/config/index.ts";
import { createLogger, type Logger } from "../libs/log/index.ts";
import { startTelemetry } from "../libs/telemetry/index.ts";
import { UsageError } from "./admin.ts";
import { limitGatewayHeapGrowth } from "./heap-growth.ts";
import type { ServiceName } from "./run-services.ts";

/** One stop function per started piece, run in reverse order of startup. */
export type Stopper = () => Promise<void>;

const targets = ["all", "token", "policy", "vault", "audit", "gateway"] as const;

/**
 * Stops everything on SIGTERM or SIGINT, in reverse order of startup: the servers first
 * (readiness flips, in-flight work drains), then background work, the bus, the database
 * and telemetry last so the shutdown itself is still traced.
 */
function stopOnSignals(log: Logger, stoppers: Stopper[]): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    let code = 0;
    for (const stopper of stoppers.toReversed()) {
      try {
        await stopper();
      } catch (err) {
        code = 1;
        log.error({ err }, "error during shutdown");
      }
    }
    log.info("stopped");
    process.exit(code);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

/**
 * `latchkey run <target>`. Each target loads only its own code: `run gateway` never loads
 * the services, the database drivers or PGlite, which keeps a gateway process's heap (and
 * so its full garbage collections and RSS) to what the data plane needs.
 */
export async function run(target: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (!(targets as readonly string[]).includes(target)) {
    throw new UsageError(`usage: latchkey run <${targets.join("|")}>`);
  }
  const base = loadEnv({ ...commonEnv }, env);
  // One component per process names it on every line; under `run all` each component's lines
  // name their own (componentLogger) and the process's own lines name none.
  const log = createLogger({
    level: base.LATCHKEY_LOG_LEVEL,
    ...(target !== "all" && { component: target }),
  });
  const telemetry = startTelemetry({ serviceName: `latchkey-${target}`, env, log });
  const stoppers: Stopper[] = [() => telemetry.shutdown()];
  stopOnSignals(log, stoppers);
  try {
    if (target === "gateway") {
      limitGatewayHeapGrowth();
      const { runGatewayOnly } = await import("./run-gateway.ts");
      return await runGatewayOnly(env, log, stoppers);
    }
    const services = await import("./run-services.ts");
    if (target === "all") return await services.runAll(env, log, stoppers);
    await services.runService(target as ServiceName, env, log, stoppers);
  } catch (err) {
    // Undo what did start, so a failed start leaves no half-open pools or ports behind.
    for (const stopper of stoppers.toReversed()) await stopper().catch(() => undefined);
    throw err;
  }
}
