import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import type { AuditPublisher } from "./audit.ts";
import { authorize } from "./authorize.ts";
import type { Credentials } from "./credential.ts";
import { Exchange } from "./exchange.ts";
import type { Forwarder } from "./forward.ts";
import { type Refusal, refusals } from "./refusal.ts";
import type { IdSource } from "./request-ids.ts";
import type { UpstreamResolver, UpstreamTarget } from "./resolve-upstream.ts";
import { respondProbe, respondRefusal } from "./respond.ts";
import { rewrite } from "./rewrite.ts";
import { declaresBody, type RouteLimits, route } from "./route.ts";
import type { Tracing } from "./tracing.ts";
import type { Verifier } from "./verify.ts";

/** What the request path is built from (see gateway.ts for how). */
export interface RequestPathDeps {
  limits: RouteLimits;
  verifier: Verifier;
  upstreams: UpstreamResolver;
  credentials: Credentials;
  forwarder: Forwarder;
  audit: AuditPublisher;
  tracing: Tracing;
  ids: IdSource;
  log: Logger;
  /** Whether /_latchkey/readyz answers 200 (false while starting and draining). */
  isReady: () => boolean;
}

/** Audit reason of requests allowed on data kept past its TTL (DESIGN.md §8). */
const staleReason = "stale_cache";

/**
 * Builds `handleRequest(req, res)`: the gateway's request path, DESIGN.md §4, one call per
 * step and each step in its own module. Limits (rate limits, quotas; step 5 of §4) come in
 * a later issue. The warm path makes no RPC and awaits only values already cached.
 */
export function createRequestPath(deps: RequestPathDeps) {
  const { limits, verifier, upstreams, credentials, forwarder, audit, tracing, ids, log } = deps;

  // The steps that may wait on a service, each a child span in spans mode. Warm, each
  // answers synchronously from its cache, and serve() then awaits nothing but the
  // upstream: awaiting a plain value still costs a promise and a microtask turn.
  const verify = tracing.wrapStep("verify", (secret: string | undefined) =>
    verifier.verify(secret),
  );
  const resolveUpstream = tracing.wrapStep("resolve upstream", (tenant: string, slug: string) =>
    upstreams.resolve(tenant, slug),
  );
  const authorizeStep = tracing.wrapStep("authorize", authorize);
  const resolveCredential = tracing.wrapStep("resolve credential", (target: UpstreamTarget) =>
    credentials.resolve(target),
  );

  /**
   * The request path of one exchange, from routing to audit. Never rejects. One async
   * function for the whole of it: each costs a promise and a frame on every request.
   */
  async function serve(exchange: Exchange, req: IncomingMessage, res: ServerResponse) {
    try {
      const rawHeaders = req.rawHeaders;

      // 1. Route: refuse anything ambiguous, then split /{slug}/{rest}.
      const routed = route(exchange.method, req.url ?? "", rawHeaders, limits);
      if (routed.kind === "refusal") return refuse(exchange, res, routed, declaresBody(rawHeaders));
      if (routed.kind === "internal") return probe(exchange, res, routed.endpoint);
      exchange.slug = routed.slug;
      exchange.path = routed.path;
      const hasBody = routed.contentLength > 0 || routed.chunked;

      // 2. Authenticate: the proxy token, verified (cached by hash, positive and negative).
      let token = verify(routed.secret);
      if (token instanceof Promise) token = await token;
      if (token.kind === "refusal") return refuse(exchange, res, token, hasBody);
      exchange.tenant = token.tenant;
      exchange.tokenName = token.name;

      // 3. Resolve the upstream in the token's tenant (never in another).
      let upstream = resolveUpstream(token.tenant, routed.slug);
      if (upstream instanceof Promise) upstream = await upstream;
      if (upstream.kind === "refusal") return refuse(exchange, res, upstream, hasBody);

      // 4. Authorize: the token's upstream list, then the tenant's policy.
      let denied = authorizeStep(token, upstream, exchange);
      if (denied instanceof Promise) denied = await denied;
      if (denied !== undefined) return refuse(exchange, res, denied, hasBody);

      // 5. Credential: the real upstream secret, from the vault (cached for its lease).
      let credential = resolveCredential(upstream);
      if (credential instanceof Promise) credential = await credential;
      if (credential.kind === "refusal") return refuse(exchange, res, credential, hasBody);
      exchange.credentialVersion = credential.version;

      // 6. Rewrite: outbound path and headers, proxy token out, credential in.
      tracing.beginUpstream(exchange);
      const outbound = rewrite(exchange, routed, upstream, credential);

      // 7. Forward, and 8. respond: the upstream's answer streams back as it arrives.
      const outcome = await forwarder.forward(
        req,
        res,
        exchange,
        routed,
        upstream,
        outbound,
        credential,
      );
      if (outcome.kind === "refusal") return refuse(exchange, res, outcome, hasBody);
      const stale = token.stale || upstream.bundle.stale;
      const reason = outcome.reason !== "" ? outcome.reason : stale ? staleReason : "";
      exchange.finish(GatewayDecision.ALLOWED, reason, exchange.status);
    } catch (err) {
      fail(exchange, res, err);
    } finally {
      tracing.end(exchange);
      // 9. Audit: queued for the background publisher; probes are not audited.
      if (exchange.decision !== GatewayDecision.UNSPECIFIED) audit.record(exchange);
    }
  }

  // With its server span active in spans mode.
  const run = tracing.wrapRequest(serve);

  function refuse(exchange: Exchange, res: ServerResponse, refusal: Refusal, close: boolean): void {
    if (refusal.tenant !== undefined) exchange.tenant = refusal.tenant;
    if (refusal.tokenName !== undefined) exchange.tokenName = refusal.tokenName;
    if (!res.headersSent && !res.destroyed) {
      respondRefusal(res, refusal, exchange.requestId, close);
    }
    exchange.finish(refusal.decision, refusal.reason, refusal.status);
  }

  function probe(exchange: Exchange, res: ServerResponse, endpoint: "healthz" | "readyz"): void {
    const ok = endpoint === "healthz" || deps.isReady();
    respondProbe(res, ok, exchange.requestId);
    exchange.finish(GatewayDecision.UNSPECIFIED, endpoint, ok ? 200 : 503);
  }

  function fail(exchange: Exchange, res: ServerResponse, err: unknown): void {
    // A bug, not a verdict: keep the details in the log (no request data), tell the client
    // only that it failed.
    log.error({ err, requestId: exchange.requestId }, "request path failed");
    const refusal = refusals.internalError;
    if (!res.headersSent && !res.destroyed) respondRefusal(res, refusal, exchange.requestId, true);
    else res.destroy();
    exchange.finish(refusal.decision, refusal.reason, refusal.status);
  }

  /** Handles one request from arrival to audit. Never rejects. */
  return function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const now = Date.now();
    const exchange = new Exchange(
      ids.requestId(now),
      now,
      req.method ?? "GET",
      clientAddress(req),
      (req.socket as TLSSocket).encrypted === true,
      req.rawHeaders,
    );
    tracing.begin(exchange, req.rawHeaders);
    return run(exchange, req, res);
  };
}

/** The client's address as its socket shows it, IPv4-mapped IPv6 shortened to IPv4. */
function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? "";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
