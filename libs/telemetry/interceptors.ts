import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { observeStream } from "./observe-stream.ts";
import { extractContext, injectTraceHeaders, tracer } from "./trace-context.ts";

/** `latchkey.token.v1.TokenService/GetToken`: the span name OpenTelemetry's RPC conventions ask for. */
export function procedureOf(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/**
 * Codes that mean the server failed, per the OpenTelemetry gRPC conventions. Client mistakes
 * (NotFound, InvalidArgument, PermissionDenied, ...) leave a server span unset, or a trace
 * view would be red with every 404.
 */
const serverFaults = new Set<Code>([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

function finishSpan(span: Span, err: unknown, kind: "server" | "client"): void {
  const code = err === undefined ? 0 : ConnectError.from(err).code;
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0 && (kind === "client" || serverFaults.has(code))) {
    // The code name only: error messages may echo request content.
    span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] });
  }
  span.end();
}

function rpcAttributes(method: DescMethod) {
  return {
    "rpc.system": "connect_rpc",
    "rpc.service": method.parent.typeName,
    "rpc.method": method.name,
  };
}

/** Runs `next(req)` in `ctx`, ending `span` when the unary response or the stream finishes. */
function traced(
  span: Span,
  ctx: Context,
  kind: "server" | "client",
  call: () => ReturnType<ReturnType<Interceptor>>,
): ReturnType<ReturnType<Interceptor>> {
  return context.with(ctx, call).then(
    (res) => {
      if (!res.stream) {
        finishSpan(span, undefined, kind);
        return res;
      }
      return {
        ...res,
        // Re-bind the span's context on each pull: the protocol handler iterates from
        // outside it, and handlers that log or call other services must see this span.
        message: observeStream(res.message, {
          around: (pull) => context.with(ctx, pull),
          onEnd: (err) => finishSpan(span, err, kind),
        }),
      };
    },
    (err: unknown) => {
      finishSpan(span, err, kind);
      throw err;
    },
  );
}

/**
 * Server interceptor: continues the caller's trace from the `traceparent` request header
 * and runs the call inside a SERVER span named after the procedure. There is no
 * auto-instrumentation for node:http2, so this is what makes gRPC calls show up in traces.
 */
export const serverTracingInterceptor: Interceptor = (next) => (req) => {
  const parent = extractContext(req.header);
  const span = tracer.startSpan(
    procedureOf(req.method),
    { kind: SpanKind.SERVER, attributes: rpcAttributes(req.method) },
    parent,
  );
  return traced(span, trace.setSpan(parent, span), "server", () => next(req));
};

/**
 * Client interceptor: runs the call inside a CLIENT span and sends its context as
 * `traceparent`, so the server's span becomes its child.
 */
export const clientTracingInterceptor: Interceptor = (next) => (req) => {
  const span = tracer.startSpan(procedureOf(req.method), {
    kind: SpanKind.CLIENT,
    attributes: rpcAttributes(req.method),
  });
  const ctx = trace.setSpan(context.active(), span);
  injectTraceHeaders(req.header, ctx);
  return traced(span, ctx, "client", () => next(req));
};
