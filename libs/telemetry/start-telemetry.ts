import { context, DiagLogLevel, diag, propagation, trace } from "@opentelemetry/api";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { envDetector, hostDetector, osDetector, processDetector } from "@opentelemetry/resources";
import { NodeSDK, type NodeSDKConfiguration } from "@opentelemetry/sdk-node";
import type { Logger } from "../log/index.ts";

/** A span processor as NodeSDK accepts it (from @opentelemetry/sdk-trace). */
export type SpanProcessor = NonNullable<NodeSDKConfiguration["spanProcessors"]>[number];

/** Options for startTelemetry. */
export interface TelemetryOptions {
  /** `service.name` of every span, unless OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  /** Where OTEL_* variables are read from. */
  env?: NodeJS.ProcessEnv;
  /** Receives the exporter choice and OpenTelemetry's own warnings and errors. */
  log?: Logger;
  /**
   * Span processors to use instead of the environment's exporter choice: tests pass a
   * SimpleSpanProcessor over an InMemorySpanExporter here.
   */
  spanProcessors?: SpanProcessor[];
}

/** Running telemetry; shut it down last, after the server has drained. */
export interface Telemetry {
  /**
   * Flushes pending spans and unregisters the global provider. Never rejects: a failed
   * flush is logged. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/**
 * A processor that drops every span. NodeSDK registers no tracer provider at all without
 * a processor, and then spans have no ids: the audit log, log lines and `traceparent`
 * towards upstreams all need ids even when nothing is exported.
 */
const dropSpans: SpanProcessor = {
  onStart() {},
  onEnd() {},
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/**
 * Where spans go per the OpenTelemetry environment variables: an OTLP/HTTP protobuf
 * endpoint URL, or undefined for no export. Export is on only when asked for, so a
 * laptop run does not retry a missing collector on localhost:4318 forever.
 */
export function otlpTracesUrl(env: NodeJS.ProcessEnv): string | "default" | undefined {
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.includes("none")) return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  // The signal path is appended only to the generic endpoint (OTLP exporter spec).
  if (base) return `${base.replace(/\/+$/, "")}/v1/traces`;
  return exporters.includes("otlp") ? "default" : undefined;
}

let running: Telemetry | undefined;

/**
 * Starts OpenTelemetry tracing: a tracer provider, the W3C trace-context and baggage
 * propagators and an AsyncLocalStorage context manager, always; an OTLP exporter
 * (http/protobuf) only when OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * or OTEL_TRACES_EXPORTER=otlp asks for one. Call it first in main, before anything
 * starts spans.
 *
 * The providers are process globals, so a second call (`latchkey run all` starts several
 * components in one process) returns the running instance.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (running) return running;
  const env = options.env ?? process.env;
  const log = options.log;
  if (log) {
    diag.setLogger(
      {
        error: (msg, ...args) => log.error({ args }, `opentelemetry: ${msg}`),
        warn: (msg, ...args) => log.warn({ args }, `opentelemetry: ${msg}`),
        info: (msg) => log.debug(`opentelemetry: ${msg}`),
        debug: (msg) => log.trace(`opentelemetry: ${msg}`),
        verbose: (msg) => log.trace(`opentelemetry: ${msg}`),
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
  }

  const url = options.spanProcessors ? undefined : otlpTracesUrl(env);
  const tracing: Partial<NodeSDKConfiguration> = options.spanProcessors
    ? { spanProcessors: options.spanProcessors }
    : url
      ? { traceExporter: new OTLPTraceExporter(url === "default" ? {} : { url }) }
      : { spanProcessors: [dropSpans] };
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME?.trim() || options.serviceName,
    // No cloud detectors: on a laptop or in CI they probe metadata endpoints and warn.
    resourceDetectors: [envDetector, hostDetector, osDetector, processDetector],
    textMapPropagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
    // Traces only: metrics and logs would otherwise default to OTLP exporters.
    metricReaders: [],
    logRecordProcessors: [],
    ...tracing,
  });
  sdk.start();
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (url && protocol && protocol !== "http/protobuf") {
    log?.warn({ protocol }, "only OTLP http/protobuf is bundled; exporting with it");
  }
  log?.info(
    { exporter: options.spanProcessors ? "custom" : url ? "otlp" : "none", url },
    "telemetry started",
  );

  let stopping: Promise<void> | undefined;
  const handle: Telemetry = {
    shutdown() {
      stopping ??= sdk
        .shutdown()
        .catch((err: unknown) => {
          // The last spans could not be flushed (collector down): shutting down goes on.
          log?.warn(
            { err: err instanceof Error ? err.message : String(err) },
            "telemetry flush failed",
          );
        })
        .finally(() => {
          // Unregister so a later startTelemetry in the same process (tests) can register.
          trace.disable();
          propagation.disable();
          context.disable();
          if (running === handle) running = undefined;
        });
      return stopping;
    },
  };
  running = handle;
  return handle;
}
