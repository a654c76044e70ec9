/**
 * What a load generator is asked to do and what it reports back. Shared by wrk (load-wrk.ts),
 * the Node closed-loop fallback (load-closed.ts) and the open-loop generator (load-open.ts),
 * so the orchestrator can use any of them interchangeably.
 */
import type { LatencySummary } from "./latency.ts";
import type { Route } from "./routes.ts";

/** One measurement's request stream. */
export interface LoadSpec {
  /**
   * e.g. http://127.0.0.1:8080 (loopback only). May carry a path prefix (the Latchkey rows
   * use `http://127.0.0.1:PORT/bench`): request URLs are `baseUrl + route.path`.
   */
  baseUrl: string;
  route: Route;
  /** Headers sent on every request: the target's headers plus the route's. */
  headers: Record<string, string>;
  /** Per-request header sets used round-robin on top of `headers` (see RunningTarget.headerRotation). */
  headerRotation?: ReadonlyArray<Record<string, string>>;
  durationS: number;
}

/** Closed loop: `connections` clients, each sending its next request as soon as the previous answer arrives. */
export interface ClosedLoopSpec extends LoadSpec {
  connections: number;
}

/** Open loop: requests start on a fixed timetable (`rate` per second) whatever the answers do. */
export interface OpenLoopSpec extends LoadSpec {
  rate: number;
  /** Upper bound on concurrent connections the generator may open when answers are slow. */
  maxConnections: number;
  /**
   * Dispatch by spinning on the event loop instead of sleeping on timers. Timers fire up to
   * ~1 ms late, which is added to every latency measured from the timetable (about +1 ms at
   * p50 on the test machine); spinning sends within microseconds but costs a whole core and
   * is time-sliced badly when other work shares that core, so it is only used when the
   * generator has a core of its own on a quiet machine (see `--dispatch`).
   */
  spin: boolean;
  /**
   * Seconds the timetable runs before the measured `durationS`, unrecorded: the generator's
   * own code is compiled and its connections opened then, so its warm-up (a few ms of late
   * sends every few ms for the first half second, seen on the test machine) is not charged
   * to the target.
   */
  leadInS: number;
}

/** Result of a closed-loop run. */
export interface ClosedLoopResult {
  tool: "wrk" | "node";
  requests: number;
  durationS: number;
  rps: number;
  /** Transport errors plus non-2xx/3xx answers; a proxy that fails injection shows up here. */
  errors: number;
  latency: LatencySummary;
}

/** Result of an open-loop run; latency is measured from each request's scheduled start. */
export interface OpenLoopResult {
  tool: "node-open-loop";
  rate: number;
  scheduled: number;
  completed: number;
  errors: number;
  /** Requests still unanswered when the run's drain timeout expired (also counted in errors). */
  timedOut: number;
  durationS: number;
  /** Latency from each request's scheduled start (the figure the table reports). */
  latency: LatencySummary;
  /** Latency from when each request was actually handed to the client (excludes generator lateness). */
  serviceTime: LatencySummary;
  scheduler: "spin" | "timer";
  /** p99 of how late the generator itself sent requests versus the timetable (generator noise floor). */
  dispatchLagP99Ms: number;
}

/** Ensures a URL is on the loopback interface; the harness never sends traffic elsewhere. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") {
    throw new Error(`refusing to send benchmark load to ${host}: loopback only`);
  }
}

/** Headers for request number `i`: fixed headers, overlaid by the i-th rotating set if any. */
export function headersFor(spec: LoadSpec, i: number): Record<string, string> {
  const rotation = spec.headerRotation;
  if (rotation === undefined || rotation.length === 0) return spec.headers;
  return { ...spec.headers, ...rotation[i % rotation.length] };
}

/**
 * The origin a connection pool for `baseUrl` must be opened on: undici's Pool takes an origin
 * only and would drop (or refuse) a path prefix.
 */
export function originOf(baseUrl: string): string {
  return new URL(baseUrl).origin;
}

/**
 * The request path for `routePath` under `baseUrl`: the base URL's path prefix (without a
 * trailing slash) followed by the route's absolute path, the same URL wrk gets as
 * `baseUrl + route.path`.
 */
export function requestPath(baseUrl: string, routePath: string): string {
  const prefix = new URL(baseUrl).pathname.replace(/\/+$/, "");
  return `${prefix}${routePath}`;
}
