import type { Span } from "@opentelemetry/api";
import { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";

/** Request headers policy conditions never see: they carry credentials. */
const hiddenFromPolicy = new Set(["authorization", "x-api-key", "cookie", "proxy-authorization"]);
const noRuleIds: readonly string[] = [];

/**
 * One request through the gateway: what each step learns, which is what its audit event
 * records (the audit buffer encodes it when the request finishes and keeps only the bytes).
 * It also serves as policy's `request` input: `headers` and `time` are built only if a
 * condition reads them.
 */
export class Exchange {
  readonly requestId: string;
  /** Date.now() at arrival (the audit event's time). */
  readonly startMs: number;
  /** performance.now() at arrival, for the duration. */
  readonly startPerf: number;
  readonly method: string;
  readonly clientAddress: string;
  /** Whether the client connection is TLS (for X-Forwarded-Proto). */
  readonly encrypted: boolean;
  readonly rawHeaders: readonly string[];

  traceId = "";
  /** The gateway's server span id. */
  spanId = "";
  /** `traceparent` sent upstream: this trace, the gateway's upstream-call span. */
  traceparent = "";
  /** The inbound `tracestate`, forwarded only when the inbound trace is continued. */
  tracestate = "";
  /** The OpenTelemetry server span, when spans are on. */
  span: Span | undefined = undefined;
  /** The OpenTelemetry span of the upstream call, when spans are on. */
  upstreamSpan: Span | undefined = undefined;

  /** Canonical path (after the slug); "" until routed. */
  path = "";
  slug = "";
  tenant = "";
  /** Token resource name; "" without a valid token. */
  tokenName = "";
  decision: GatewayDecision = GatewayDecision.UNSPECIFIED;
  reason = "";
  status = 0;
  durationUs = 0;
  requestBytes = 0;
  responseBytes = 0;
  policyVersion = 0;
  dryRunRuleIds: readonly string[] = noRuleIds;
  credentialVersion = 0;

  constructor(
    requestId: string,
    startMs: number,
    method: string,
    clientAddress: string,
    encrypted: boolean,
    rawHeaders: readonly string[],
  ) {
    this.requestId = requestId;
    this.startMs = startMs;
    this.startPerf = performance.now();
    this.method = method;
    this.clientAddress = clientAddress;
    this.encrypted = encrypted;
    this.rawHeaders = rawHeaders;
  }

  /** Policy's `request.headers`: lower-case names, repeated headers joined with ", ". */
  get headers(): Record<string, string> {
    // No prototype: a header named `__proto__` must stay a plain key.
    const out: Record<string, string> = Object.create(null);
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as string).toLowerCase();
      if (hiddenFromPolicy.has(name)) continue;
      const value = raw[i + 1] as string;
      out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
    }
    return out;
  }

  /** Policy's `request.time`: when the request arrived. */
  get time(): Date {
    return new Date(this.startMs);
  }

  /** Records the outcome; the request path calls it exactly once. */
  finish(decision: GatewayDecision, reason: string, status: number): void {
    this.decision = decision;
    this.reason = reason;
    this.status = status;
    this.durationUs = Math.round((performance.now() - this.startPerf) * 1000);
  }
}
