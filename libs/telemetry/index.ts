export {
  clientTracingInterceptor,
  procedureOf,
  serverTracingInterceptor,
} from "./interceptors.ts";
export { observeStream, type StreamHooks } from "./observe-stream.ts";
export {
  otlpTracesUrl,
  type SpanProcessor,
  startTelemetry,
  type Telemetry,
  type TelemetryOptions,
} from "./start-telemetry.ts";
export {
  currentTraceId,
  extractContext,
  type HeaderCarrier,
  injectTraceHeaders,
  recordError,
  startSpan,
  tracer,
  withExtractedContext,
} from "./trace-context.ts";
