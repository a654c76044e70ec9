import assert from "node:assert/strict";
import { after, before, test } from "node:test";
// sdk-node's own tracing dependency, as libs/telemetry's tests use it.
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { embeddedDb } from "../../test/fixtures/services.ts";
import { migrate } from "../db/index.ts";
import type { Db } from "../db/types.ts";
import { ChangeAction, ResourceType } from "../gen/latchkey/events/v1/events_pb.js";
import { currentTraceId, startSpan, startTelemetry, type Telemetry } from "../telemetry/index.ts";
import { enqueueChange, resourceSubjectWord } from "./index.ts";

let telemetry: Telemetry;
let db: Db;
const schema = "obx_trace";

before(async () => {
  telemetry = startTelemetry({
    serviceName: "latchkey-outbox-test",
    spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
  });
  db = await embeddedDb();
  await migrate(db, { schema, dir: new URL("./testdata/empty/", import.meta.url), outbox: true });
});
after(() => telemetry.shutdown());

const change = {
  tenant: "acme",
  resource: "tenants/acme/tokens/tok_x",
  resourceType: ResourceType.TOKEN,
  action: ChangeAction.REVOKED,
  actor: "key_admin",
};

test("a change enqueued inside a span carries its W3C trace context", async () => {
  const { event, traceId } = await startSpan("revoke", async () => ({
    traceId: currentTraceId(),
    event: await db.transaction((tx) => enqueueChange(tx, schema, change)),
  }));
  assert.match(traceId, /^[0-9a-f]{32}$/);
  const { rows } = await db.query<{ subject: string; headers: Record<string, string> }>(
    `select subject, headers from ${schema}.outbox where id = $1`,
    [event.id],
  );
  assert.equal(rows[0]?.subject, "latchkey.change.acme.token");
  assert.match(
    rows[0]?.headers.traceparent ?? "",
    new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`),
  );
});

test("a change enqueued outside any span has no trace headers", async () => {
  const event = await db.transaction((tx) => enqueueChange(tx, schema, change));
  const { rows } = await db.query<{ headers: Record<string, string> }>(
    `select headers from ${schema}.outbox where id = $1`,
    [event.id],
  );
  assert.deepEqual(rows[0]?.headers, {});
});

test("every resource type has its subject word, and an unset type is refused", async () => {
  assert.equal(resourceSubjectWord(ResourceType.TOKEN), "token");
  assert.equal(resourceSubjectWord(ResourceType.UPSTREAM), "upstream");
  assert.equal(resourceSubjectWord(ResourceType.POLICY_SET), "policy");
  assert.equal(resourceSubjectWord(ResourceType.CREDENTIAL), "credential");
  await assert.rejects(
    db.transaction((tx) =>
      enqueueChange(tx, schema, { ...change, resourceType: ResourceType.UNSPECIFIED }),
    ),
    /no change subject/,
  );
});
