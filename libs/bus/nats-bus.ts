import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type MsgHdrs, nanos, headers as natsHeaders } from "@nats-io/transport-node";
import { createSubjectMapper, redeliveryDelay, type SubjectMapper } from "./subjects.ts";
import {
  type Bus,
  type BusLogger,
  type BusMessage,
  type ConsumeOptions,
  duplicateWindowMs,
  type PublishOptions,
  type StreamKey,
  type Subscription,
  streams,
} from "./types.ts";

/** Options for createNatsBus. */
export interface NatsBusOptions {
  url: string;
  name?: string;
  namespace?: string;
  log: BusLogger;
  /** First redelivery delay after a handler throws (default 500 ms), doubling per failure. */
  redeliveryDelayMs?: number;
}

/** How long the server waits for an ack before redelivering (a crashed or stuck worker). */
const ackWaitMs = 30_000;
/** JetStream's own default for max_ack_pending, kept unless a consumer needs more room. */
const defaultMaxAckPending = 1000;
/** Restart backoff of a failing consume loop: doubling from this, capped at maxRestartMs. */
const firstRestartMs = 250;
const maxRestartMs = 10_000;

/**
 * Connects to NATS, makes sure both streams exist (file storage, 2-minute duplicate
 * window), and returns the Bus over JetStream. Reconnects forever once connected; the
 * first connection must succeed, so a wrong URL fails at startup.
 */
export async function createNatsBus(options: NatsBusOptions): Promise<Bus> {
  const { log } = options;
  const mapper = createSubjectMapper(options.namespace);
  const baseDelay = options.redeliveryDelayMs ?? 500;
  const nc = await connect({
    servers: options.url,
    ...(options.name !== undefined && { name: options.name }),
    maxReconnectAttempts: -1,
    // Without this nats.js builds two Error objects (stack traces included) per request,
    // i.e. per JetStream publish, for the off chance that it fails: that was ~20% of a
    // publisher's CPU in bench-ingest.ts. Errors keep their message; they lose the trace of
    // where the request started.
    noAsyncTraces: true,
  });
  try {
    const jsm = await jetstreamManager(nc);
    for (const key of Object.keys(streams) as StreamKey[]) await ensureStream(jsm, mapper, key);
  } catch (error) {
    await nc.close();
    throw error;
  }
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const running = new Set<Subscription>();
  let closed = false;

  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect" || status.type === "reconnect") {
        log.info({ server: status.server, event: status.type }, "nats connection changed");
      }
    }
  })();

  async function ensureConsumer(
    stream: string,
    durable: string,
    maxAckPending: number,
  ): Promise<void> {
    const config = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      // Never give up on a message: handlers are idempotent and the audit log must be whole.
      max_deliver: -1,
      deliver_policy: DeliverPolicy.All,
      // Messages pulled ahead and messages being handled are both unacknowledged: room for
      // both, or the server stops delivering until acks come back and handlers sit idle.
      max_ack_pending: maxAckPending,
    };
    try {
      await jsm.consumers.add(stream, config);
    } catch (error) {
      // An existing durable with an older configuration: update what may change.
      await jsm.consumers.update(stream, durable, {
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
      });
      log.debug({ err: error, stream, durable }, "updated existing consumer");
    }
  }

  function fromJsMsg(m: JsMsg): BusMessage {
    return {
      subject: mapper.fromWire(m.subject) ?? m.subject,
      data: m.data,
      headers: fromNatsHeaders(m.headers),
    };
  }

  return {
    kind: "nats",

    async publish(subject: string, data: Uint8Array, publishOptions: PublishOptions) {
      await js.publish(mapper.toWire(subject), data, {
        msgID: publishOptions.msgId,
        ...(publishOptions.headers && { headers: toNatsHeaders(publishOptions.headers) }),
      });
    },

    consume(consumeOptions: ConsumeOptions): Subscription {
      if (closed) throw new Error("bus closed");
      const stream = mapper.streamName(consumeOptions.stream);
      const { durable, handler } = consumeOptions;
      const concurrency = Math.max(1, Math.floor(consumeOptions.concurrency ?? 1));
      const maxAckPending = Math.max(
        defaultMaxAckPending,
        concurrency + (consumeOptions.batch ?? 256),
      );
      let stopped = false;
      // Handlers started and not yet settled, and who waits for a slot or for all of them.
      let active = 0;
      let slotFree: (() => void) | undefined;
      let allSettled: (() => void) | undefined;
      let messages: ConsumerMessages | undefined;
      const pause = new AbortController();

      const handle = async (m: JsMsg): Promise<void> => {
        if (stopped) {
          // Pulled but not started before stop(): hand it back now instead of after ack_wait.
          m.nak();
          return;
        }
        try {
          await handler(fromJsMsg(m));
          // Fire-and-forget (a publish to the reply subject, not ackAck's round trip): the
          // handler has committed, and a lost ack only means one idempotent redelivery.
          m.ack();
        } catch (error) {
          const delay = redeliveryDelay(baseDelay, m.info.deliveryCount);
          log.warn(
            { err: error, subject: m.subject, durable, delivery: m.info.deliveryCount, delay },
            "bus handler failed; message will be redelivered",
          );
          m.nak(delay);
        }
      };

      /** Starts `m`'s handler without waiting for it; resolves once a slot is free again. */
      const dispatch = (m: JsMsg): Promise<void> | undefined => {
        active++;
        void handle(m)
          .catch((error: unknown) => {
            // ack/nak only throw on a closed connection: the server redelivers after ack_wait.
            log.warn({ err: error, stream, durable }, "bus ack failed");
          })
          .finally(() => {
            active--;
            const waiting = slotFree;
            slotFree = undefined;
            waiting?.();
            if (active === 0) allSettled?.();
          });
        if (active < concurrency) return undefined;
        return new Promise<void>((resolve) => {
          slotFree = resolve;
        });
      };

      /** Resolves when every dispatched handler has settled (acked or nak'ed). */
      const settled = (): Promise<void> =>
        active === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              allSettled = () => {
                allSettled = undefined;
                resolve();
              };
            });

      // The restart loop: the consumer may vanish, the server restart, heartbeats go
      // missing; every such failure ends the iterator, and the loop starts it again.
      const loop = async (): Promise<void> => {
        let failures = 0;
        while (!stopped) {
          try {
            // After a failure the stream itself may be gone (deleted by an operator).
            if (failures > 0) await ensureStream(jsm, mapper, consumeOptions.stream);
            await ensureConsumer(stream, durable, maxAckPending);
            const consumer = await js.consumers.get(stream, durable);
            if (stopped) break;
            const current = await consumer.consume({
              max_messages: consumeOptions.batch ?? 256,
            });
            messages = current;
            if (stopped) current.stop();
            void watchForLostConsumer(current);
            try {
              for await (const m of current) {
                if (concurrency === 1) await handle(m);
                else {
                  const full = dispatch(m);
                  if (full !== undefined) await full;
                }
                failures = 0;
              }
            } finally {
              // stop() resolves only after the handlers it let start have finished.
              await settled();
            }
            if (stopped) break;
            throw new Error("consumer iterator ended");
          } catch (error) {
            if (stopped) break;
            failures++;
            const wait = Math.min(firstRestartMs * 2 ** (failures - 1), maxRestartMs);
            log.warn({ err: error, stream, durable, wait }, "bus consumer failed; restarting");
            await sleep(wait, pause.signal);
          }
        }
      };
      // nats.js keeps pulling from a deleted consumer forever and only reports it; ending
      // the iterator sends the loop back to ensureConsumer, which recreates it.
      const watchForLostConsumer = async (current: ConsumerMessages): Promise<void> => {
        for await (const status of current.status()) {
          if (
            status.type === "consumer_deleted" ||
            status.type === "consumer_not_found" ||
            status.type === "stream_not_found"
          ) {
            current.stop(new Error(`${status.type} on ${stream}/${durable}`));
            return;
          }
        }
      };
      const done = loop();
      const subscription: Subscription = {
        async stop() {
          if (!stopped) {
            stopped = true;
            running.delete(subscription);
            pause.abort();
            messages?.stop();
          }
          await done;
          // Acks are fire-and-forget: flush so they reach the server before stop resolves,
          // and a restarted consumer does not see acked messages again.
          if (!nc.isClosed()) await nc.flush().catch(() => {});
        },
      };
      running.add(subscription);
      return subscription;
    },

    subscribe(subject: string, handler: (message: BusMessage) => void): Subscription {
      if (closed) throw new Error("bus closed");
      const sub = nc.subscribe(mapper.toWire(subject), {
        callback(error, msg) {
          if (error) {
            log.warn({ err: error, subject }, "bus subscription error");
            return;
          }
          const canonical = mapper.fromWire(msg.subject);
          if (canonical === undefined) return;
          try {
            handler({ subject: canonical, data: msg.data, headers: fromNatsHeaders(msg.headers) });
          } catch (handlerError) {
            log.warn({ err: handlerError, subject: canonical }, "bus subscriber failed");
          }
        },
      });
      return {
        async stop() {
          if (sub.isClosed()) return;
          await sub.drain().catch(() => sub.unsubscribe());
        },
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...running].map((subscription) => subscription.stop()));
      if (!nc.isClosed()) await nc.drain();
    },
  };
}

async function ensureStream(
  jsm: JetStreamManager,
  mapper: SubjectMapper,
  key: StreamKey,
): Promise<void> {
  const name = mapper.streamName(key);
  const subjects = mapper.streamSubjects(key);
  const duplicateWindow = nanos(duplicateWindowMs);
  const maxAge = nanos(streams[key].maxAgeMs);
  try {
    const info = await jsm.streams.info(name);
    const sameSubjects =
      [...(info.config.subjects ?? [])].sort().join(" ") === [...subjects].sort().join(" ");
    if (
      !sameSubjects ||
      info.config.duplicate_window !== duplicateWindow ||
      info.config.max_age !== maxAge
    ) {
      await jsm.streams.update(name, {
        subjects,
        duplicate_window: duplicateWindow,
        max_age: maxAge,
      });
    }
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) {
      throw error;
    }
    // Replicas starting at once may all get here: adding an identical stream is idempotent.
    await jsm.streams.add({
      name,
      subjects,
      storage: StorageType.File,
      duplicate_window: duplicateWindow,
      max_age: maxAge,
    });
  }
}

function toNatsHeaders(record: Record<string, string>): MsgHdrs | undefined {
  const entries = Object.entries(record);
  if (entries.length === 0) return undefined;
  const h = natsHeaders();
  for (const [name, value] of entries) h.set(name.toLowerCase(), value);
  return h;
}

/**
 * NATS headers as the lower-case record handlers see. Headers the server adds (`Nats-*`,
 * e.g. `Nats-Msg-Id`) are left out so both bus kinds hand over exactly what was published.
 */
function fromNatsHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const [name, values] of h) {
    const key = name.toLowerCase();
    if (key.startsWith("nats-")) continue;
    out[key] = values.join(", ");
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
