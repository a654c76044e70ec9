/**
 * A description of the machine a run happened on; benchmark figures mean nothing without it.
 */
import { availableParallelism, cpus, release, totalmem } from "node:os";
import { wrkVersion } from "./load-wrk.ts";
import { nginxVersion } from "./nginx.ts";

/** Machine facts recorded in every report. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  node: string;
  nginx?: string;
  wrk?: string;
}

/** Collects the machine facts (runs `nginx -v` and `wrk -v` when present). */
export function describeMachine(): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    kernel: release(),
    node: process.version,
    nginx: nginxVersion(),
    wrk: wrkVersion(),
  };
}
