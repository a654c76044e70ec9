/**
 * The request primitive shared by the Node load generators (closed-loop fallback and open
 * loop): one undici request whose body is read to the end, so a streaming response counts as
 * done only when its last event has arrived.
 */
import { readFileSync } from "node:fs";
import type { Pool } from "undici";
import { headersFor, type LoadSpec } from "./load-spec.ts";

/**
 * Sends request number `i` of `spec` on `pool` (opened on the base URL's origin) to `path`
 * (see requestPath: the base URL's prefix plus the route's path; callers compute it once);
 * resolves true for a 2xx/3xx answer read to the end.
 */
export async function sendOne(
  pool: Pool,
  spec: LoadSpec,
  i: number,
  path: string = spec.route.path,
): Promise<boolean> {
  try {
    const { statusCode, body } = await pool.request({
      path,
      method: spec.route.method,
      headers: headersFor(spec, i),
      body: spec.route.body ?? null,
    });
    // Read (and discard) the whole body: a partial read would return the socket early and
    // make a streaming route look faster than it is.
    await body.dump({ limit: 1024 * 1024 });
    return statusCode >= 200 && statusCode < 400;
  } catch {
    return false;
  }
}

/**
 * Reads the spec file a generator process was given as its only argument. A file rather than
 * argv or env because header rotations can exceed the kernel's 128 KiB per-argument limit.
 */
export function readSpecArgument<Spec>(): Spec {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write("usage: node <generator>.ts <spec.json>\n");
    process.exit(2);
  }
  return JSON.parse(readFileSync(path, "utf8")) as Spec;
}
