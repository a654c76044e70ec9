import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type Dispatcher, Pool } from "undici";
import type { Credential } from "./credential.ts";
import type { Exchange } from "./exchange.ts";
import { type Refusal, refusals } from "./refusal.ts";
import type { UpstreamTarget } from "./resolve-upstream.ts";
import { responseHeaders } from "./respond.ts";
import type { OutboundRequest } from "./rewrite.ts";
import type { ProxyRoute } from "./route.ts";

/** How a forwarded exchange ended once the upstream's answer started flowing. */
export interface Relayed {
  readonly kind: "relayed";
  /** "" when the response was relayed whole; otherwise why it stopped (audited). */
  readonly reason: string;
}

const relayed: Relayed = { kind: "relayed", reason: "" };
const upstreamBroke: Relayed = { kind: "relayed", reason: "upstream_aborted" };
const clientClosed: Relayed = { kind: "relayed", reason: "client_closed" };

/** Options for createForwarder. */
export interface ForwarderOptions {
  /** Keep-alive connections per upstream origin. */
  connections: number;
  connectTimeoutMs: number;
  /** Longest silence between response chunks; 0 disables. */
  bodyTimeoutMs: number;
  keepAliveMs: number;
}

/** Steps 7 and 8 of the request path: send upstream, stream the answer back. */
export interface Forwarder {
  /**
   * Sends the request and relays the response as it arrives. A request body is streamed
   * too, except one of at most `bufferedBodyBytes` with a declared length, which is read
   * whole first.
   * Resolves with a Refusal when nothing was sent to the client yet (the caller answers:
   * 413, 502, 504), or `relayed` once the response is over.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    exchange: Exchange,
    route: ProxyRoute,
    upstream: UpstreamTarget,
    outbound: OutboundRequest,
    credential: Credential,
  ): Promise<Refusal | Relayed>;
  /** Closes every upstream pool, waiting for in-flight requests. */
  close(): Promise<void>;
}

/**
 * Request bodies with a declared length up to this size are read whole before the upstream
 * call and sent with the head in one write; larger and chunked ones stream. Handing undici
 * the client's stream kept every request's objects alive across two young-generation
 * collections on a busy gateway, so they were promoted and the old generation filled with
 * garbage: in the benchmark (1 KiB POSTs) the gateway used 20-25% more CPU per request
 * streaming than buffering (docs/benchmarks.md). The body is in memory anyway: it usually
 * arrives in the same read as the head. The cost is at most this much memory per request in
 * flight, and only for requests whose token and policy have already passed.
 */
export const bufferedBodyBytes = 64 * 1024;

/** Thrown into undici when a chunked request body passes the upstream's limit. */
class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

/** Passed to undici's abort when the client went away. */
class ClientClosedError extends Error {
  override name = "ClientClosedError";
}

/**
 * Creates the forwarder: one undici Pool per upstream origin (keep-alive, no pipelining),
 * requests dispatched with a handler that writes straight into the client's response,
 * honouring backpressure both ways. undici never follows redirects or retries through
 * `dispatch`; a 3xx is relayed to the client as is.
 */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const pools = new Map<string, Pool>();

  function poolFor(origin: string): Pool {
    let pool = pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: options.connections,
        pipelining: 1,
        keepAliveTimeout: options.keepAliveMs,
        connectTimeout: options.connectTimeoutMs,
        bodyTimeout: options.bodyTimeoutMs,
      });
      pools.set(origin, pool);
    }
    return pool;
  }

  function dispatch(
    res: ServerResponse,
    exchange: Exchange,
    upstream: UpstreamTarget,
    outbound: OutboundRequest,
    credential: Credential,
    body: Dispatcher.DispatchOptions["body"],
  ): Promise<Refusal | Relayed> {
    return new Promise((resolve) => {
      const relay = new Relay(res, exchange, credential.echoes, resolve);
      // on, not once: the relay removes it when it finishes, and once() would wrap it in a
      // bound function and a state object on every request.
      res.on("close", relay.onClientClose);
      poolFor(upstream.origin).dispatch(
        {
          path: outbound.path,
          method: exchange.method as Dispatcher.HttpMethod,
          headers: outbound.headers,
          body,
          headersTimeout: upstream.requestTimeoutMs,
          // Requests are never replayed on another connection: a POST must not be sent twice.
          idempotent: false,
        },
        relay,
      );
    });
  }

  return {
    forward(req, res, exchange, route, upstream, outbound, credential) {
      const max = upstream.maxRequestBodyBytes;
      if (route.contentLength > max) return Promise.resolve(refusals.bodyTooLarge);
      if (route.chunked) {
        const body = limitBody(req, max) as unknown as Dispatcher.DispatchOptions["body"];
        return dispatch(res, exchange, upstream, outbound, credential, body);
      }
      // No body: none declared (-1, as on most GETs) or an empty one.
      if (route.contentLength <= 0) {
        return dispatch(res, exchange, upstream, outbound, credential, null);
      }
      if (route.contentLength > bufferedBodyBytes) {
        return dispatch(res, exchange, upstream, outbound, credential, req);
      }
      // A small declared body: read whole first (see bufferedBodyBytes).
      return readBody(req).then((body) =>
        body === undefined
          ? clientClosed
          : dispatch(res, exchange, upstream, outbound, credential, body),
      );
    },
    async close() {
      const closing = [...pools.values()].map((pool) => pool.close());
      pools.clear();
      await Promise.allSettled(closing);
    },
  };
}

/**
 * A chunked request body, passed through chunk by chunk until it exceeds `max`; then the
 * upload to the upstream is aborted before the excess is sent.
 */
async function* limitBody(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > max) throw new BodyTooLargeError();
    yield chunk as Buffer;
  }
}

/**
 * The whole body of a request whose length is declared, or undefined when the client went
 * away before sending all of it (nothing has been sent upstream then).
 */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    // After "end" this changes nothing (a promise settles once).
    req.once("close", () => resolve(undefined));
  });
}

/** Maps an undici failure (before any response) to what the client is told. */
function refusalFor(err: Error): Refusal {
  if (err instanceof BodyTooLargeError) return refusals.bodyTooLarge;
  const code = (err as { code?: string }).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return refusals.upstreamTimeout;
  }
  return refusals.upstreamUnreachable;
}

/**
 * The dispatch handler of one request: writes the upstream's status, headers and body
 * chunks straight into the client's response, pausing the upstream when the client reads
 * slower than it sends.
 */
class Relay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #exchange: Exchange;
  readonly #echoes: readonly string[];
  readonly #resolve: (outcome: Refusal | Relayed) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #done = false;
  /** Whether a body chunk has been written (the response head goes out with the first). */
  #wroteBody = false;

  constructor(
    res: ServerResponse,
    exchange: Exchange,
    echoes: readonly string[],
    resolve: (outcome: Refusal | Relayed) => void,
  ) {
    this.#res = res;
    this.#exchange = exchange;
    this.#echoes = echoes;
    this.#resolve = resolve;
  }

  #finish(outcome: Refusal | Relayed): void {
    if (this.#done) return;
    this.#done = true;
    this.#res.off("close", this.onClientClose);
    this.#resolve(outcome);
  }

  /** The client connection closed: stop the upstream exchange too. */
  readonly onClientClose = (): void => {
    if (this.#done || this.#res.writableFinished) return;
    if (this.#controller !== undefined) this.#controller.abort(new ClientClosedError());
    else this.#finish(clientClosed);
  };

  /** Sends the response head alone, unless a body chunk already took it along. */
  #flushHead(): void {
    if (!this.#wroteBody && !this.#done && !this.#res.destroyed) this.#res.flushHeaders();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#res.destroyed) controller.abort(new ClientClosedError());
  }

  onBodySent(chunk: Buffer): void {
    this.#exchange.requestBytes += chunk.length;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    const res = this.#res;
    if (res.destroyed) {
      controller.abort(new ClientClosedError());
      return;
    }
    const exchange = this.#exchange;
    try {
      res.writeHead(statusCode, responseHeaders(headers, exchange.requestId, this.#echoes));
    } catch (err) {
      // An invalid status or header value from the upstream (Node refuses to write it).
      controller.abort(err as Error);
      return;
    }
    exchange.status = statusCode;
    // An event stream may stay silent for a while: send the head at the end of this turn so
    // the client's EventSource opens instead of waiting for the first event. When that event
    // came in the same read (the usual case), the head has left with it in one write.
    const type = headers["content-type"];
    if (typeof type === "string" && type.startsWith("text/event-stream")) {
      setImmediate(() => this.#flushHead());
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#res;
    if (res.destroyed) {
      controller.abort(new ClientClosedError());
      return;
    }
    this.#exchange.responseBytes += chunk.length;
    this.#wroteBody = true;
    if (!res.write(chunk)) {
      controller.pause();
      // Closures made only when needed: most responses never wait for the client.
      res.once("drain", () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#res.end();
    this.#finish(relayed);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const res = this.#res;
    if (err instanceof ClientClosedError || res.destroyed) {
      this.#finish(clientClosed);
      return;
    }
    if (!res.headersSent) {
      // The status written by onResponseStart (if any) never reached the client.
      this.#exchange.status = 0;
      this.#finish(refusalFor(err));
      return;
    }
    // Mid-body: the status line is gone, so the only honest signal left is to cut the
    // connection (a truncated chunked body is detectable by the client).
    res.destroy();
    this.#finish(upstreamBroke);
  }
}
