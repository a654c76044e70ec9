/**
 * Spawning and stopping the harness's child processes.
 *
 * Every server and load generator runs in its own process so none of them shares an event
 * loop with the orchestrator or with each other. Children are tracked here so an aborted run
 * (Ctrl-C, an exception) does not leave an upstream or an nginx listening behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { pinned } from "./cpu-plan.ts";

/** A child process started by the harness. */
export interface Child {
  pid: number;
  process: ChildProcess;
  /** Everything the child wrote to stderr, kept for error messages (bounded). */
  stderr(): string;
  /** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. Resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every tracked child synchronously; used on process exit and on signals. */
function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

const STDERR_LIMIT = 16 * 1024;

/**
 * Starts `command args`, optionally pinned to `cores`, and tracks it for cleanup.
 * stdout is piped (the caller may read it); stderr is captured for diagnostics.
 */
export function startChild(
  command: string,
  args: string[],
  options: { cores?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Child {
  installExitHook();
  const cmd = pinned(options.cores, command, args);
  const proc = spawn(cmd.command, cmd.args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  live.add(proc);
  let errText = "";
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    if (errText.length < STDERR_LIMIT) errText += chunk;
  });
  const exited = new Promise<void>((resolve) => {
    proc.once("exit", () => {
      live.delete(proc);
      resolve();
    });
  });
  return {
    pid: proc.pid,
    process: proc,
    stderr: () => errText,
    async stop(graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts a Node script of the harness (run with the same Node 24 binary as the orchestrator)
 * and waits for the first JSON line it prints on stdout, which is its readiness message
 * (typically `{"port": 12345}`). Rejects if the child exits or stays silent for `timeoutMs`.
 */
export async function startNodeChild<Ready>(
  script: string,
  args: string[],
  options: { cores?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ child: Child; ready: Ready }> {
  const child = startChild(process.execPath, [script, ...args], options);
  const stdout = child.process.stdout;
  if (stdout === null) throw new Error("child stdout is not piped");
  const reader = createInterface({ input: stdout });
  const timeoutMs = options.timeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const first = await Promise.race([
      new Promise<string | undefined>((resolve) => {
        reader.once("line", resolve);
        reader.once("close", () => resolve(undefined));
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${script} not ready after ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    if (first === undefined) {
      throw new Error(`${script} exited before it was ready: ${child.stderr().trim()}`);
    }
    // The reader stays attached with no listener: later lines (logs) are read and dropped,
    // so a chatty child never blocks on a full stdout pipe.
    return { child, ready: JSON.parse(first) as Ready };
  } catch (error) {
    await child.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a Node script of the harness to completion and returns the last JSON line it printed
 * on stdout (its result). Used for the load generators, which print one result and exit.
 */
export async function runNodeChild<Result>(
  script: string,
  args: string[],
  options: { cores?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Result> {
  const child = startChild(process.execPath, [script, ...args], options);
  return collectJsonResult<Result>(child, script, options.timeoutMs);
}

/**
 * Waits for `child` to exit (killing it after `timeoutMs`) and parses the last stdout line
 * that starts with `marker` (default: the last line that parses as JSON).
 */
export async function collectJsonResult<Result>(
  child: Child,
  label: string,
  timeoutMs: number,
  marker?: string,
): Promise<Result> {
  const stdout = child.process.stdout;
  if (stdout === null) throw new Error("child stdout is not piped");
  let out = "";
  stdout.setEncoding("utf8");
  stdout.on("data", (chunk: string) => {
    out += chunk;
  });
  const timer = setTimeout(() => child.process.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) =>
    child.process.once("close", (c) => resolve(c)),
  );
  clearTimeout(timer);
  const lines = out.split("\n").filter((l) => l.trim() !== "");
  for (let i = lines.length - 1; i >= 0; i--) {
    let line = lines[i] ?? "";
    if (marker !== undefined) {
      if (!line.startsWith(marker)) continue;
      line = line.slice(marker.length);
    }
    try {
      return JSON.parse(line) as Result;
    } catch {
      // Not the result line (a log line); keep looking further up.
    }
  }
  throw new Error(
    `${label} exited with code ${code} without a result: ${child.stderr().trim() || out.trim()}`,
  );
}
