import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Takes the data directory for this process, so a second `latchkey run all` (or a
 * `latchkey migrate` against the same PGlite files) fails with a clear message instead of
 * opening the embedded database twice, which PGlite does not guard against and which can
 * corrupt it. A lock left by a process that died is taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, "latchkey.pid");
  for (;;) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number(readFileSync(file, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new DataDirLockedError(
        `${dataDir} is in use by another latchkey process (pid ${holder}); stop it first or use another LATCHKEY_DATA_DIR`,
      );
    }
    unlinkSync(file);
  }
  return () => {
    try {
      if (Number(readFileSync(file, "utf8").trim()) === process.pid) unlinkSync(file);
    } catch {
      // Already gone: nothing to release.
    }
  };
}

/** The data directory is held by a live process. */
export class DataDirLockedError extends Error {}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
