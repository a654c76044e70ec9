import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** The data directory is held by another live process. */
export class DataDirLockedError extends Error {}

/** This process instance: pid alone is not enough, every container's first process is pid 1. */
const self = { host: hostname(), pid: process.pid, instance: randomBytes(8).toString("hex") };
const held = new Map<string, number>();

/**
 * Takes the data directory for this process, so a second `latchkey run ...` or a
 * `latchkey migrate` on the same PGlite files fails with a clear message instead of opening
 * the embedded database twice, which PGlite does not guard against and which can corrupt
 * it. Re-entrant within one process. A lock is taken over only when it was left on this
 * host by a process that is gone; a lock from another host (a shared volume) is never
 * taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, "latchkey.lock");
  const count = held.get(file) ?? 0;
  if (count === 0) acquire(dataDir, file);
  held.set(file, count + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (held.get(file) ?? 1) - 1;
    held.set(file, left);
    if (left > 0) return;
    held.delete(file);
    if (readHolder(file)?.instance === self.instance) unlinkSync(file);
  };
}

function acquire(dataDir: string, file: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Written whole to a private file, then linked into place: link() fails when the lock
  // exists, and nobody can ever read a half-written lock.
  const draft = `${file}.${self.pid}.${self.instance}`;
  writeFileSync(draft, `${JSON.stringify(self)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(draft, file);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = readHolder(file);
      if (holder && isStale(holder)) {
        unlinkSync(file);
        continue;
      }
      if (attempt >= 2) {
        const who = holder ? `pid ${holder.pid} on ${holder.host}` : "an unknown process";
        throw new DataDirLockedError(
          `${dataDir} is in use by another latchkey process (${who}); stop it first or use another LATCHKEY_DATA_DIR (if it is gone, remove ${file})`,
        );
      }
    }
  } finally {
    unlinkSync(draft);
  }
}

function readHolder(file: string): typeof self | undefined {
  try {
    const value = JSON.parse(readFileSync(file, "utf8")) as typeof self;
    return typeof value.pid === "number" && typeof value.host === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Left on this host by a process that no longer runs (or by an earlier life of this pid). */
function isStale(holder: typeof self): boolean {
  if (holder.host !== self.host) return false;
  if (holder.pid === self.pid) return holder.instance !== self.instance;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code !== "EPERM";
  }
}
