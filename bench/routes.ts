/**
 * The three request shapes every target is measured on. The upstream, the load generators
 * and the preflight check all read this one table so that a route cannot mean different
 * things to different parts of the harness.
 */

/** Name of a measured route; used as the row key in the report. */
export type RouteName = "get-json" | "post-echo-1k" | "sse-stream";

/** One request shape sent by the load generators. */
export interface Route {
  /** Stable identifier printed in the table and written to the JSON report. */
  name: RouteName;
  method: "GET" | "POST";
  path: string;
  /** Request body for POST routes; the same bytes on every request so nothing is allocated per request. */
  body?: string;
  /** Extra request headers the route needs (content type of the body). */
  headers: Record<string, string>;
}

/** Size of the POST body: 1 KiB, the size the issue asks for. */
export const ECHO_BODY_BYTES = 1024;

/** Number of server-sent events the upstream writes on GET /sse. */
export const SSE_EVENT_COUNT = 5;

/** A fixed 1 KiB ASCII body; ASCII so byte length equals string length in every tool (wrk, undici). */
export const ECHO_BODY = "x".repeat(ECHO_BODY_BYTES);

/** The measured routes, in the order they appear in the table. */
export const ROUTES: readonly Route[] = [
  { name: "get-json", method: "GET", path: "/json", headers: {} },
  {
    name: "post-echo-1k",
    method: "POST",
    path: "/echo",
    body: ECHO_BODY,
    headers: { "content-type": "application/octet-stream" },
  },
  { name: "sse-stream", method: "GET", path: "/sse", headers: { accept: "text/event-stream" } },
];
