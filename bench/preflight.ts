/**
 * Correctness checks before anything is timed, and the warm-up that follows them.
 *
 * A proxy that drops the credential, buffers the stream into nothing or mangles the body can
 * look very fast; checking one request per route (status and body) first keeps such a target
 * out of the table instead of letting it top it.
 */
import { Pool } from "undici";
import { headersFor, type LoadSpec, originOf, requestPath } from "./load-spec.ts";
import { ECHO_BODY, type Route, SSE_EVENT_COUNT } from "./routes.ts";
import type { RunningTarget } from "./target.ts";
import type { Upstream } from "./upstream.ts";

function specFor(target: RunningTarget, route: Route): LoadSpec {
  return {
    baseUrl: target.baseUrl,
    route,
    headers: { ...target.headers, ...route.headers },
    headerRotation: target.headerRotation,
    durationS: 0,
  };
}

/** Checks the answer to one request on `route` through `target`; returns a problem description or undefined. */
async function checkRoute(
  pool: Pool,
  target: RunningTarget,
  route: Route,
): Promise<string | undefined> {
  const spec = specFor(target, route);
  const { statusCode, body } = await pool.request({
    path: requestPath(target.baseUrl, route.path),
    method: route.method,
    headers: headersFor(spec, 0),
    body: route.body ?? null,
  });
  const text = await body.text();
  if (statusCode !== 200)
    return `${route.method} ${route.path} answered ${statusCode}: ${text.slice(0, 120)}`;
  switch (route.name) {
    case "get-json": {
      const parsed = JSON.parse(text) as { id?: unknown };
      return typeof parsed.id === "string" ? undefined : `${route.path} returned unexpected JSON`;
    }
    case "post-echo-1k":
      return text === ECHO_BODY
        ? undefined
        : `${route.path} did not echo the ${ECHO_BODY.length}-byte body (got ${text.length} bytes)`;
    case "sse-stream": {
      const events = text.split("event: tick").length - 1;
      return events === SSE_EVENT_COUNT
        ? undefined
        : `${route.path} delivered ${events} of ${SSE_EVENT_COUNT} events`;
    }
  }
}

/** Returns a problem description if any route through `target` misbehaves, else undefined. */
export async function preflight(
  target: RunningTarget,
  routes: readonly Route[],
): Promise<string | undefined> {
  const pool = new Pool(originOf(target.baseUrl), { connections: 1 });
  try {
    for (const route of routes) {
      const problem = await checkRoute(pool, target, route);
      if (problem !== undefined) return problem;
    }
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await pool.close();
  }
}

/**
 * Confirms the upstream refuses a request without the credential, i.e. that a 200 through a
 * proxy really proves the proxy injected it. Throws if the upstream does not answer 401.
 */
export async function assertUpstreamRequiresCredential(upstream: Upstream): Promise<void> {
  const pool = new Pool(upstream.baseUrl, { connections: 1 });
  try {
    const { statusCode, body } = await pool.request({ path: "/json", method: "GET" });
    await body.dump();
    if (statusCode !== 401)
      throw new Error(`upstream answered ${statusCode} without a credential; expected 401`);
  } finally {
    await pool.close();
  }
}

/**
 * Sends `requests` requests per route through `target` at `concurrency`, unmeasured, so JIT
 * compilation, connection pools and caches are warm before the first timed round.
 */
export async function warmUp(
  target: RunningTarget,
  routes: readonly Route[],
  requests: number,
  concurrency: number,
): Promise<void> {
  const pool = new Pool(originOf(target.baseUrl), { connections: concurrency, pipelining: 1 });
  try {
    for (const route of routes) {
      const spec = specFor(target, route);
      const path = requestPath(target.baseUrl, route.path);
      let next = 0;
      const worker = async () => {
        while (next < requests) {
          const i = next++;
          const { body } = await pool.request({
            path,
            method: route.method,
            headers: headersFor(spec, i),
            body: route.body ?? null,
          });
          await body.dump();
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    }
  } finally {
    await pool.close();
  }
}
