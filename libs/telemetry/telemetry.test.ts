import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
// sdk-node's own tracing dependency (not re-exported by it): the in-memory exporter.
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { invalidArgument } from "../errors/index.ts";
import { AuditService, StreamEventsResponseSchema } from "../gen/latchkey/audit/v1/audit_pb.js";
import { GetTokenResponseSchema, TokenService } from "../gen/latchkey/token/v1/token_pb.js";
import { createLogger } from "../log/index.ts";
import { createClientTransport, createRpcServer } from "../rpc/index.ts";
import type { RpcServer } from "../rpc/types.ts";
import {
  currentTraceId,
  injectTraceHeaders,
  otlpTracesUrl,
  startSpan,
  startTelemetry,
  type Telemetry,
  withExtractedContext,
} from "./index.ts";

const exporter = new InMemorySpanExporter();
const processor = new SimpleSpanProcessor({ exporter });
let telemetry: Telemetry;
let server: RpcServer;
let url: string;

before(async () => {
  telemetry = startTelemetry({
    serviceName: "latchkey-test",
    spanProcessors: [processor],
  });
  server = createRpcServer({
    name: "test",
    routes(router) {
      router.service(TokenService, {
        async getToken(req) {
          if (req.name === "bad") throw invalidArgument("bad name");
          if (req.name === "boom") throw new Error("boom");
          // An internal step, as the gateway's verify/authorize/forward are.
          const traceId = await startSpan("lookup", async () => currentTraceId());
          return create(GetTokenResponseSchema, {
            token: { name: req.name, displayName: traceId },
          });
        },
      });
      router.service(AuditService, {
        async *streamEvents() {
          for (let i = 0; i < 3; i++) {
            // Each message is produced after a real async gap, from the protocol
            // handler's pull: the span context must be re-bound for every one.
            await sleep(1);
            yield create(StreamEventsResponseSchema, {
              event: { id: `evt_${i}`, traceId: currentTraceId() },
            });
          }
        },
      });
    },
    services: [TokenService, AuditService],
    host: "127.0.0.1",
    port: 0,
    authenticate: async () => undefined,
    log: createLogger({ level: "silent" }),
  });
  ({ url } = await server.start());
});

after(async () => {
  await server.stop();
  await telemetry.shutdown();
});

function spansOf(name: string) {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

/**
 * Waits for the exports of every span ended so far. The processor holds a span back until
 * the resource's asynchronous attributes (host and OS detection) are known, which under
 * load can take longer than a call: without this a test may miss its own spans and the
 * next one find them.
 */
const exported = () => processor.forceFlush();

describe("tracing across a client and a server", () => {
  test("a call makes a CLIENT span and a SERVER span of the same trace, parent to child", async () => {
    exporter.reset();
    const transport = createClientTransport({ baseUrl: url });
    try {
      const tokens = createClient(TokenService, transport);
      const { rootTraceId, res } = await startSpan("caller", async () => ({
        rootTraceId: currentTraceId(),
        res: await tokens.getToken({ name: "tenants/acme/tokens/tok_1" }),
      }));

      await exported();
      const procedure = "latchkey.token.v1.TokenService/GetToken";
      const client = spansOf(procedure).find((s) => s.kind === SpanKind.CLIENT);
      const srv = spansOf(procedure).find((s) => s.kind === SpanKind.SERVER);
      const [lookup] = spansOf("lookup");
      const [caller] = spansOf("caller");
      assert.ok(client && srv && lookup && caller);

      const traceId = caller.spanContext().traceId;
      assert.equal(rootTraceId, traceId);
      for (const span of [client, srv, lookup]) assert.equal(span.spanContext().traceId, traceId);
      assert.equal(client.parentSpanContext?.spanId, caller.spanContext().spanId);
      assert.equal(srv.parentSpanContext?.spanId, client.spanContext().spanId);
      assert.equal(lookup.parentSpanContext?.spanId, srv.spanContext().spanId);
      // The handler saw the trace id (what the audit log records).
      assert.equal(res.token?.displayName, traceId);
      assert.equal(srv.attributes["rpc.service"], "latchkey.token.v1.TokenService");
      assert.equal(srv.attributes["rpc.method"], "GetToken");
      assert.equal(srv.status.code, SpanStatusCode.UNSET);
    } finally {
      transport.close();
    }
  });

  test("server spans are errors for server faults only", async () => {
    exporter.reset();
    const transport = createClientTransport({ baseUrl: url });
    try {
      const tokens = createClient(TokenService, transport);
      for (const name of ["bad", "boom"]) {
        await tokens.getToken({ name }).then(
          () => assert.fail("expected an error"),
          (err) => assert.ok(err instanceof ConnectError),
        );
      }
      await exported();
      const servers = spansOf("latchkey.token.v1.TokenService/GetToken").filter(
        (s) => s.kind === SpanKind.SERVER,
      );
      const codes = servers.map((s) => [s.attributes["rpc.grpc.status_code"], s.status.code]);
      assert.deepEqual(codes, [
        [Code.InvalidArgument, SpanStatusCode.UNSET],
        [Code.Internal, SpanStatusCode.ERROR],
      ]);
    } finally {
      transport.close();
    }
  });

  test("server-streaming handlers see the call's trace on every message", async () => {
    exporter.reset();
    const transport = createClientTransport({ baseUrl: url });
    try {
      const audit = createClient(AuditService, transport);
      const seen: string[] = [];
      for await (const res of audit.streamEvents({ parent: "tenants/acme" })) {
        seen.push(res.event?.traceId ?? "");
      }
      await exported();
      const srv = spansOf("latchkey.audit.v1.AuditService/StreamEvents").find(
        (s) => s.kind === SpanKind.SERVER,
      );
      assert.ok(srv, "the server span ends when the stream ends");
      assert.deepEqual(seen, Array(3).fill(srv.spanContext().traceId));
    } finally {
      transport.close();
    }
  });
});

describe("trace context helpers", () => {
  test("inject and extract carry a trace through a header record", async () => {
    const headers: Record<string, string> = {};
    const sent = await startSpan("publish", async () => {
      injectTraceHeaders(headers);
      return currentTraceId();
    });
    assert.match(headers.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const received = await withExtractedContext(headers, () =>
      startSpan("consume", async () => currentTraceId()),
    );
    assert.equal(received, sent);
  });

  test("currentTraceId is empty outside any span", () => {
    assert.equal(currentTraceId(), "");
  });

  test("startTelemetry is idempotent within a process", () => {
    assert.equal(startTelemetry({ serviceName: "again" }), telemetry);
  });

  test("exports over OTLP only when the environment asks for it", () => {
    assert.equal(otlpTracesUrl({}), undefined);
    assert.equal(
      otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318/" }),
      "http://jaeger:4318/v1/traces",
    );
    assert.equal(
      otlpTracesUrl({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/custom" }),
      "http://c:4318/custom",
    );
    assert.equal(otlpTracesUrl({ OTEL_TRACES_EXPORTER: "otlp" }), "default");
    assert.equal(
      otlpTracesUrl({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" }),
      undefined,
    );
  });

  test("without an exporter, spans still get trace ids", () => {
    // A fresh process: the providers are process globals, and this one has a test exporter.
    const script = `
      import { startTelemetry, startSpan, currentTraceId } from ${JSON.stringify(new URL("./index.ts", import.meta.url).href)};
      const t = startTelemetry({ serviceName: "x", env: {} });
      const id = await startSpan("step", async () => currentTraceId());
      await t.shutdown();
      process.stdout.write(id);
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { PATH: process.env.PATH },
      encoding: "utf8",
    });
    assert.match(out, /^[0-9a-f]{32}$/);
  });
});
