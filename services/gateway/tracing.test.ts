/**
 * Spans mode: the gateway's server span continues the client's trace, each step is a child
 * span, and the upstream receives the trace through `traceparent`.
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { request } from "undici";
import { createMemoryBus } from "../../libs/bus/memory-bus.ts";
import { AuditEventBatchSchema } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { Effect, PolicyService, RuleMode } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { TokenService } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import { VaultService } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { startTelemetry, type Telemetry } from "../../libs/telemetry/index.ts";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { createGateway, type Gateway } from "./gateway.ts";

const secret = generateTokenSecret().secret;
const exporter = new InMemorySpanExporter();
const bus = createMemoryBus();
const auditTraceIds: string[] = [];
let upstreamHeaders: IncomingHttpHeaders | undefined;
let upstream: Server;
let gateway: Gateway;
let gatewayUrl = "";
// Exports wait for the resource's host and OS detection: forceFlush() waits for them.
const processor = new SimpleSpanProcessor({ exporter });
let telemetry: Telemetry;

before(async () => {
  telemetry = startTelemetry({
    serviceName: "gateway-test",
    spanProcessors: [processor],
  });
  upstream = createServer((req, res) => {
    upstreamHeaders = req.headers;
    res.end("ok");
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const transport = createRouterTransport((router) => {
    router.service(TokenService, {
      async verifyToken() {
        return {
          claims: { name: "tenants/acme/tokens/tok_1", tenant: "acme", subject: "s" },
          cacheTtl: durationFromMs(60_000),
        };
      },
    });
    router.service(PolicyService, {
      async getBundle() {
        return {
          cacheTtl: durationFromMs(60_000),
          upstreams: [
            {
              name: "tenants/acme/upstreams/api",
              origin,
              credential: "tenants/acme/credentials/c",
            },
          ],
          policySet: {
            version: 1n,
            rules: [{ id: "allow", effect: Effect.ALLOW, mode: RuleMode.ENFORCE }],
          },
        };
      },
    });
    router.service(VaultService, {
      async resolveCredential(req) {
        return {
          name: req.name,
          version: 1,
          scheme: { kind: { case: "bearer", value: {} } },
          material: { kind: { case: "token", value: "real-upstream-secret" } },
          lease: durationFromMs(60_000),
        };
      },
    });
  });
  bus.subscribe("latchkey.audit.>", (message) => {
    for (const event of fromBinary(AuditEventBatchSchema, message.data).events)
      auditTraceIds.push(event.traceId);
  });
  gateway = createGateway({
    tokenClient: createClient(TokenService, transport),
    policyClient: createClient(PolicyService, transport),
    vaultClient: createClient(VaultService, transport),
    bus,
    log: createLogger({ level: "silent" }),
    config: { port: 0, tracing: "spans", auditFlushMs: 5 },
  });
  gatewayUrl = (await gateway.start()).url;
});

after(async () => {
  await gateway.stop();
  await new Promise((resolve) => upstream.close(resolve));
  await bus.close();
  await telemetry.shutdown();
});

test("a server span continues the client's trace, with a child span per step", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const clientSpan = "00f067aa0ba902b7";
  const res = await request(`${gatewayUrl}/api/v1/items`, {
    headers: { authorization: `Bearer ${secret}`, traceparent: `00-${traceId}-${clientSpan}-01` },
  });
  assert.equal(res.statusCode, 200);
  await res.body.text();
  // The gateway ends its spans just after the answer's last byte.
  await sleep(50);
  await processor.forceFlush();

  const spans = exporter
    .getFinishedSpans()
    .filter((span) => span.spanContext().traceId === traceId);
  const server = spans.find((span) => span.kind === SpanKind.SERVER);
  assert.ok(server, "server span");
  assert.equal(server.parentSpanContext?.spanId, clientSpan);
  assert.equal(server.attributes["http.response.status_code"], 200);
  const serverId = server.spanContext().spanId;
  const children = spans.filter((span) => span.parentSpanContext?.spanId === serverId);
  assert.deepEqual(children.map((span) => span.name).sort(), [
    "authorize",
    "resolve credential",
    "resolve upstream",
    "upstream",
    "verify",
  ]);
  const upstreamSpan = children.find((span) => span.name === "upstream");
  assert.equal(upstreamSpan?.kind, SpanKind.CLIENT);
  // The upstream's parent is the gateway's upstream-call span, in the same trace.
  assert.equal(
    upstreamHeaders?.traceparent,
    `00-${traceId}-${upstreamSpan?.spanContext().spanId}-01`,
  );
  for (const span of spans) {
    assert.equal(JSON.stringify(span.attributes).includes(secret), false);
  }
  await sleep(50);
  assert.ok(auditTraceIds.includes(traceId));
});
