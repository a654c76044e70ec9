import { createLogger } from "../log/index.ts";
import { createMemoryBus } from "./memory-bus.ts";
import { createNatsBus } from "./nats-bus.ts";
import type { Bus, OpenBusOptions } from "./types.ts";

export { MalformedBatchError, splitAuditEventBatch } from "./audit-batch.ts";
export { createMemoryBus, type MemoryBusOptions } from "./memory-bus.ts";
export { createSubjectMapper, type SubjectMapper, subjectMatches } from "./subjects.ts";
export * from "./types.ts";

/**
 * Opens the event bus: NATS JetStream when `url` is set (both streams are created or
 * updated on open), otherwise the in-process memory bus. Callers use canonical subjects
 * (`latchkey.change.acme.token`); a namespace, when set, is applied on the wire only.
 */
export async function openBus(options: OpenBusOptions = {}): Promise<Bus> {
  const log = options.log ?? createLogger({ component: "bus" });
  const redelivery =
    options.redeliveryDelayMs !== undefined ? { redeliveryDelayMs: options.redeliveryDelayMs } : {};
  if (!options.url) return createMemoryBus({ log, ...redelivery });
  return createNatsBus({
    url: options.url,
    log,
    ...redelivery,
    ...(options.name !== undefined && { name: options.name }),
    ...(options.namespace !== undefined && { namespace: options.namespace }),
  });
}
