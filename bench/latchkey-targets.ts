/**
 * The Latchkey rows of the benchmark table. EMPTY until the gateway exists.
 *
 * Each entry is a `Target` (see target.ts). The harness starts it after the upstream, checks
 * every route once through it (200 and the expected body, i.e. the upstream credential was
 * injected), warms it up, samples its RSS through `pids()`, and measures it interleaved with
 * the baseline rows. What goes here, in this order:
 *
 *  1. `latchkey-embedded`: `latchkey run all` in one process (embedded stores), caches warm.
 *     start(): spawn `cli/latchkey.ts run all` with `startChild(process.execPath, [...], {
 *     cores: context.serverCores })`, register a provider whose base URL is
 *     `context.upstream.baseUrl` and whose credential is `context.upstream.credential`, issue a
 *     proxy token, send a few requests so token and policy caches are warm, and return
 *     `{ baseUrl, headers: { <proxy token header>: token }, pids: () => [pid], stop }`.
 *  2. `latchkey-cluster-1gw`: separate processes on PostgreSQL and NATS (127.0.0.1), one
 *     gateway process. `pids()` returns the gateway's pid only (the request path); the
 *     control-plane processes can be reported in an extra section if wanted.
 *  3. `latchkey-cluster-2gw`: as 2 with two gateway processes behind one port (or two ports
 *     with the load split); `pids()` returns both gateway pids.
 *  4. `latchkey-token-per-request`: as 1, but each request carries a different valid token:
 *     return `headerRotation: [{ <header>: token1 }, ...]` (a few thousand tokens at most; it
 *     is inlined into the wrk script) so caches cannot hide the token lookup.
 *
 * `skipReason()` should say why a row cannot run (e.g. "PostgreSQL not reachable on
 * 127.0.0.1:5432") so the harness prints it instead of failing. Do not add rows that print
 * placeholder figures.
 */
import type { Target } from "./target.ts";

/** Latchkey targets measured after the baseline rows (direct, nginx, bare Node). */
export const latchkeyTargets: Target[] = [];
