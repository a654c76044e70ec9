import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { DataDirLockedError, lockDataDir } from "./data-dir-lock.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lockFile = () => join(dir, "latchkey.lock");
const plant = (holder: { host: string; pid: number; instance: string }) =>
  writeFileSync(lockFile(), JSON.stringify(holder));

test("the lock is re-entrant in one process and gone after the last release", () => {
  const first = lockDataDir(dir);
  const second = lockDataDir(dir);
  assert.ok(existsSync(lockFile()));
  first();
  assert.ok(existsSync(lockFile()), "still held by the second user");
  second();
  assert.equal(existsSync(lockFile()), false);
});

test("a live process on this host keeps its lock", () => {
  // pid 1 always runs; it is not this test process.
  plant({ host: hostname(), pid: 1, instance: "other" });
  assert.throws(() => lockDataDir(dir), DataDirLockedError);
  assert.throws(() => lockDataDir(dir), /in use by another latchkey process \(pid 1 on /);
});

test("a lock left by a dead process on this host is taken over", () => {
  plant({ host: hostname(), pid: 2 ** 22 + 12345, instance: "dead" });
  const release = lockDataDir(dir);
  release();
  assert.equal(existsSync(lockFile()), false);
});

test("a lock from another host (a shared volume) is never taken over", () => {
  plant({ host: "another-pod", pid: process.pid, instance: "theirs" });
  assert.throws(() => lockDataDir(dir), /pid \d+ on another-pod/);
});

test("an earlier life of this pid (a restarted container) is stale", () => {
  plant({ host: hostname(), pid: process.pid, instance: "before-restart" });
  lockDataDir(dir)();
});
