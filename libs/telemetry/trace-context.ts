import {
  type Context,
  context,
  propagation,
  type Span,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/**
 * The Latchkey tracer. The API hands out a proxy that delegates to whichever provider
 * `startTelemetry` registers, so reading it before telemetry starts is fine: spans are
 * no-ops until then.
 */
export const tracer: Tracer = trace.getTracer("latchkey");

/**
 * The active span's trace id, or "" when there is none (telemetry not started, or code
 * running outside any request). The audit log stores it so a decision leads to its trace.
 */
export function currentTraceId(): string {
  const span = trace.getActiveSpan();
  if (!span) return "";
  const { traceId } = span.spanContext();
  return trace.isSpanContextValid(span.spanContext()) ? traceId : "";
}

/** Header carriers we propagate through: Fetch `Headers` or a plain lower-case record. */
export type HeaderCarrier = Headers | Record<string, string>;

const setter: TextMapSetter<HeaderCarrier> = {
  set(carrier, key, value) {
    if (carrier instanceof Headers) carrier.set(key, value);
    else carrier[key.toLowerCase()] = value;
  },
};

const getter: TextMapGetter<HeaderCarrier> = {
  get(carrier, key) {
    if (carrier instanceof Headers) return carrier.get(key) ?? undefined;
    return carrier[key.toLowerCase()] ?? carrier[key];
  },
  keys(carrier) {
    return carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier);
  },
};

/**
 * Writes the current (or given) context's `traceparent`/`tracestate`/`baggage` into
 * `headers` with the global propagator, and returns the same object. Without an active
 * span nothing is written.
 */
export function injectTraceHeaders<T extends HeaderCarrier>(headers: T, ctx?: Context): T {
  propagation.inject(ctx ?? context.active(), headers, setter);
  return headers;
}

/** Returns the active context extended with the remote span context found in `headers`. */
export function extractContext(headers: HeaderCarrier | undefined): Context {
  if (!headers) return context.active();
  return propagation.extract(context.active(), headers, getter);
}

/**
 * Runs `fn` with the remote context from `headers` active, so spans it starts become
 * children of the sender's span (bus consumers, the gateway's inbound request).
 */
export function withExtractedContext<R>(headers: HeaderCarrier | undefined, fn: () => R): R {
  return context.with(extractContext(headers), fn);
}

/**
 * Runs `fn` inside a new INTERNAL span (a child of the active span) and ends it when the
 * returned promise settles, marking it as an error if `fn` throws. For the internal steps
 * of a request: the gateway's verify, authorize, resolve and forward.
 */
export async function startSpan<R>(
  name: string,
  fn: (span: Span) => Promise<R> | R,
  attributes?: Record<string, string | number | boolean>,
): Promise<R> {
  return tracer.startActiveSpan(name, attributes ? { attributes } : {}, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Marks `span` failed with the error's class name as description; never its message. */
export function recordError(span: Span, err: unknown): void {
  // The message may come from a library that echoes input; the name is enough to
  // find the log line, which carries the same trace id.
  const name = err instanceof Error ? err.name : typeof err;
  span.setStatus({ code: SpanStatusCode.ERROR, message: name });
}
