import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { extractContext, startSpan, tracer } from "../../libs/telemetry/index.ts";
import type { Exchange } from "./exchange.ts";
import { equalsLowerCase } from "./headers.ts";
import type { IdSource } from "./request-ids.ts";

/**
 * How much tracing the gateway does:
 * - `spans`: an OpenTelemetry server span per request with children for verify, resolve,
 *   authorize and the upstream call (when an exporter is configured);
 * - `ids`: W3C trace ids only: the inbound trace is continued (or one is started), its id
 *   goes to the audit event and `traceparent` to the upstream, and no span object is built.
 *   With nothing to export, spans would cost several microseconds per request for nothing.
 */
export type TracingMode = "spans" | "ids";

/** Tracing of the request path. */
export interface Tracing {
  readonly mode: TracingMode;
  /** Starts the request's trace, continuing the inbound `traceparent` when it is valid. */
  begin(exchange: Exchange, rawHeaders: readonly string[]): void;
  /**
   * `fn` run with the request's server span active (spans mode), so the steps it calls
   * become children of that span; `fn` itself in ids mode. `fn` and the wrappers below are
   * taken once, when the request path is built: a closure per request and step cost
   * allocation on every request for nothing in ids mode (docs/benchmarks.md).
   */
  wrapRequest<A extends unknown[], R>(
    fn: (exchange: Exchange, ...args: A) => R,
  ): (exchange: Exchange, ...args: A) => R;
  /** `fn` as one step of the request path: a child span each call (spans mode), or `fn` itself. */
  wrapStep<A extends unknown[], R>(
    name: string,
    fn: (...args: A) => R | Promise<R>,
  ): (...args: A) => R | Promise<R>;
  /** Starts the upstream call's span and points `exchange.traceparent` at it. */
  beginUpstream(exchange: Exchange): void;
  /** Ends the request's spans with its outcome. */
  end(exchange: Exchange): void;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";

/** Creates the request-path tracing for `mode`. */
export function createTracing(mode: TracingMode, ids: IdSource): Tracing {
  if (mode === "ids") {
    return {
      mode,
      begin(exchange, rawHeaders) {
        const { traceparent, tracestate } = traceHeaders(rawHeaders);
        const parsed = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
        exchange.spanId = ids.spanId();
        if (parsed !== null && parsed[1] !== ZERO_TRACE && parsed[2] !== ZERO_SPAN) {
          exchange.traceId = parsed[1] as string;
          exchange.tracestate = tracestate ?? "";
          // Keep the caller's sampling decision.
          exchange.traceparent = `00-${exchange.traceId}-${exchange.spanId}-${parsed[3]}`;
        } else {
          exchange.traceId = ids.traceId();
          exchange.traceparent = `00-${exchange.traceId}-${exchange.spanId}-00`;
        }
      },
      wrapRequest: (fn) => fn,
      wrapStep: (_name, fn) => fn,
      beginUpstream() {},
      end() {},
    };
  }

  return {
    mode,
    begin(exchange, rawHeaders) {
      const { traceparent, tracestate } = traceHeaders(rawHeaders);
      const carrier: Record<string, string> = {};
      if (traceparent !== undefined) carrier.traceparent = traceparent;
      if (tracestate !== undefined) carrier.tracestate = tracestate;
      const span = tracer.startSpan(
        `${exchange.method} gateway`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            "http.request.method": exchange.method,
            "client.address": exchange.clientAddress,
            "latchkey.request_id": exchange.requestId,
          },
        },
        extractContext(carrier),
      );
      const spanContext = span.spanContext();
      exchange.span = span;
      exchange.traceId = spanContext.traceId;
      exchange.spanId = spanContext.spanId;
      exchange.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-0${spanContext.traceFlags & 1}`;
      exchange.tracestate = spanContext.traceState?.serialize() ?? "";
    },
    wrapRequest:
      (fn) =>
      (exchange, ...args) => {
        if (exchange.span === undefined) return fn(exchange, ...args);
        return context.with(
          trace.setSpan(context.active(), exchange.span),
          fn,
          undefined,
          exchange,
          ...args,
        );
      },
    wrapStep:
      (name, fn) =>
      (...args) =>
        startSpan(name, async () => fn(...args)),
    beginUpstream(exchange) {
      const span = tracer.startSpan("upstream", {
        kind: SpanKind.CLIENT,
        attributes: { "latchkey.upstream": exchange.slug },
      });
      const spanContext = span.spanContext();
      exchange.upstreamSpan = span;
      exchange.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-0${spanContext.traceFlags & 1}`;
    },
    end(exchange) {
      const failed = exchange.status >= 500 || exchange.status === 0;
      if (exchange.upstreamSpan !== undefined) {
        if (failed)
          exchange.upstreamSpan.setStatus({ code: SpanStatusCode.ERROR, message: exchange.reason });
        exchange.upstreamSpan.end();
      }
      const span = exchange.span;
      if (span === undefined) return;
      span.setAttributes({
        "http.response.status_code": exchange.status,
        "latchkey.upstream": exchange.slug,
        "latchkey.tenant": exchange.tenant,
        "latchkey.decision": exchange.reason || "allowed",
      });
      // Only server faults mark the span failed (OpenTelemetry HTTP conventions): a 403 is
      // the gateway working.
      if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: exchange.reason });
      span.end();
    },
  };
}

const noTraceHeaders = { traceparent: undefined, tracestate: undefined };

/** The inbound W3C trace headers, found without building Node's header object. */
function traceHeaders(rawHeaders: readonly string[]): {
  traceparent: string | undefined;
  tracestate: string | undefined;
} {
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 11 && equalsLowerCase(name, "traceparent")) traceparent = rawHeaders[i + 1];
    else if (name.length === 10 && equalsLowerCase(name, "tracestate"))
      tracestate = rawHeaders[i + 1];
  }
  return traceparent === undefined ? noTraceHeaders : { traceparent, tracestate };
}
