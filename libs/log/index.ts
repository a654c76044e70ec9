import { trace } from "@opentelemetry/api";
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

/**
 * Paths that may hold a secret anywhere in a log object. Redaction is a safety net: code
 * should never log these in the first place.
 */
const redactPaths = [
  "secret",
  "*.secret",
  "token",
  "material",
  "*.material",
  "password",
  "*.password",
  "authorization",
  "*.authorization",
  "headers.authorization",
  'headers["x-api-key"]',
  "headers.cookie",
  "key",
  "kek",
  "pepper",
];

/** Options for createLogger. */
export interface LoggerOptions {
  /** pino level: trace, debug, info, warn, error, fatal or silent. */
  level?: string;
  /** Component name put on every line (`token`, `gateway`, ...). */
  component?: string;
  /** Where to write; stdout by default. */
  destination?: NodeJS.WritableStream;
}

/**
 * Creates the JSON logger: one line per event, the active trace id and span id on every
 * line so a log line leads to its trace, and secrets redacted by path.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: options.component ? { component: options.component } : {},
      redact: { paths: redactPaths, censor: "[redacted]" },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
    },
    options.destination ?? process.stdout,
  );
}

/**
 * `log` for one component: a child that names it, or `log` itself when it names that
 * component already (`latchkey run gateway`'s process logger). pino writes a child's
 * bindings after its parent's, so binding the key again would repeat it on every line
 * (`"component":"gateway","component":"gateway"`), which strict JSON readers refuse.
 */
export function componentLogger(log: Logger, component: string): Logger {
  return log.bindings().component === component ? log : log.child({ component });
}
