import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { auditSubject, changeSubject, createMemoryBus } from "../../libs/bus/index.ts";
import type { Bus } from "../../libs/bus/types.ts";
import { DomainError } from "../../libs/errors/index.ts";
import type { AuditEvent } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import type { Selection } from "./event-filter.ts";
import {
  auditBatchBytes,
  captureLog,
  changeBytes,
  changeEvent,
  gatewayEvent,
} from "./event-fixtures.ts";
import { tailEvents } from "./live-tail.ts";

function tail(
  bus: Bus,
  options: { selection?: Selection; maxBuffered?: number; shutdown?: AbortSignal } = {},
) {
  const controller = new AbortController();
  const events = tailEvents({
    bus,
    log: captureLog().log,
    tenant: "acme",
    selection: options.selection ?? {},
    signal: controller.signal,
    maxBuffered: options.maxBuffered ?? 100,
    ...(options.shutdown && { shutdown: options.shutdown }),
  });
  return { events, cancel: () => controller.abort() };
}

const publishAudit = (bus: Bus, event: AuditEvent, msgId = event.id) =>
  bus.publish(auditSubject(event.tenant, "gateway_request"), auditBatchBytes(event), { msgId });

/** Starts the tail (a generator subscribes on its first next()) and returns that pending next. */
function begin(events: AsyncGenerator<AuditEvent>) {
  return events.next();
}

describe("live tail", () => {
  test("yields the tenant's matching events as they are published", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus, { selection: { upstream: "openai" } });
    const first = begin(events);
    await publishAudit(bus, gatewayEvent({ tenant: "acme", upstream: "stripe" }));
    await publishAudit(bus, gatewayEvent({ tenant: "other", upstream: "openai" }));
    const wanted = gatewayEvent({ tenant: "acme", upstream: "openai" });
    await publishAudit(bus, wanted);
    assert.deepEqual((await first).value, wanted);
    cancel();
    assert.equal((await events.next()).done, true);
    await bus.close();
  });

  test("yields every matching event of a batch, in order, and skips the malformed ones", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus, { selection: { upstream: "openai" } });
    const first = begin(events);
    const batch = [
      gatewayEvent({ tenant: "acme", upstream: "openai" }),
      gatewayEvent({ tenant: "acme", upstream: "stripe" }),
      gatewayEvent({ tenant: "", upstream: "openai" }), // no tenant: cannot be recorded
      gatewayEvent({ tenant: "acme", upstream: "openai" }),
    ];
    await bus.publish(auditSubject("acme", "request"), auditBatchBytes(...batch), {
      msgId: batch[0]?.id ?? "",
    });
    assert.deepEqual((await first).value, batch[0]);
    assert.deepEqual((await events.next()).value, batch[3]);
    cancel();
    assert.equal((await events.next()).done, true);
    await bus.close();
  });

  test("includes changes, recorded as AuditEvents with detail change", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus, { selection: { kind: "change" } });
    const first = begin(events);
    await publishAudit(bus, gatewayEvent({ tenant: "acme" }));
    const change = changeEvent({ tenant: "acme" });
    await bus.publish(changeSubject("acme", "token"), changeBytes(change), { msgId: change.id });
    const event = (await first).value as AuditEvent;
    assert.equal(event.id, change.id);
    assert.deepEqual(event.detail, { case: "change", value: change });
    cancel();
    await events.next();
    await bus.close();
  });

  test("skips a payload filed under the tenant's subject that belongs to another tenant", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus);
    const first = begin(events);
    const foreign = gatewayEvent({ tenant: "other" });
    await bus.publish(auditSubject("acme", "gateway_request"), auditBatchBytes(foreign), {
      msgId: foreign.id,
    });
    const own = gatewayEvent({ tenant: "acme" });
    await publishAudit(bus, own);
    assert.equal(((await first).value as AuditEvent).id, own.id);
    cancel();
    await events.next();
    await bus.close();
  });

  test("shows a republished event once", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus);
    const first = begin(events);
    const event = gatewayEvent({ tenant: "acme" });
    // A different message id gets past the bus's duplicate check, as a republish by a
    // process that lost its publish acknowledgement would on a live subscription.
    await publishAudit(bus, event, "first");
    await publishAudit(bus, event, "second");
    const next = gatewayEvent({ tenant: "acme" });
    await publishAudit(bus, next);
    assert.equal(((await first).value as AuditEvent).id, event.id);
    assert.equal(((await events.next()).value as AuditEvent).id, next.id);
    cancel();
    await events.next();
    await bus.close();
  });

  test("ends with ResourceExhausted when the client falls behind, instead of buffering", async () => {
    const bus = createMemoryBus();
    const { events } = tail(bus, { maxBuffered: 2 });
    const first = begin(events);
    await publishAudit(bus, gatewayEvent({ tenant: "acme" }));
    await first;
    // The client reads nothing while five more events arrive.
    for (let i = 0; i < 5; i++) await publishAudit(bus, gatewayEvent({ tenant: "acme" }));
    await assert.rejects(
      events.next(),
      (err) => err instanceof DomainError && err.kind === "resource_exhausted",
    );
    await bus.close();
  });

  test("ends with Unavailable when the service shuts down", async () => {
    const bus = createMemoryBus();
    const shutdown = new AbortController();
    const { events } = tail(bus, { shutdown: shutdown.signal });
    const first = begin(events);
    shutdown.abort();
    await assert.rejects(first, (err) => err instanceof DomainError && err.kind === "unavailable");
    await bus.close();
  });

  test("a cancelled tail stops receiving", async () => {
    const bus = createMemoryBus();
    const { events, cancel } = tail(bus);
    const first = begin(events);
    cancel();
    assert.equal((await first).done, true);
    // Its subscriptions are gone: publishing afterwards reaches no one and breaks nothing.
    await publishAudit(bus, gatewayEvent({ tenant: "acme" }));
    assert.equal((await events.next()).done, true);
    await bus.close();
  });
});
