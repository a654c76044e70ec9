import { assertPublishSubject, redeliveryDelay, streamOf, subjectMatches } from "./subjects.ts";
import {
  type Bus,
  type BusLogger,
  type BusMessage,
  type ConsumeOptions,
  duplicateWindowMs,
  type PublishOptions,
  type StreamKey,
  type Subscription,
} from "./types.ts";

/** Options for createMemoryBus. */
export interface MemoryBusOptions {
  log?: BusLogger;
  /** First redelivery delay after a handler throws (default 500 ms), doubling per failure. */
  redeliveryDelayMs?: number;
  /**
   * Messages kept per stream (default 100,000); older ones are discarded, like a JetStream
   * stream with `max_msgs` and discard-old, so a long-running embedded install stays bounded.
   */
  maxMessagesPerStream?: number;
  /** Clock, for the duplicate window. */
  now?: () => number;
}

interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
}

interface Redelivery {
  message: StoredMessage;
  dueAt: number;
}

/** One durable consumer's position, shared by every consume() with that durable name. */
interface DurableState {
  /** Sequence of the next message never delivered yet. */
  nextSeq: number;
  /** Failed messages waiting for their redelivery time, in due order. */
  redeliveries: Redelivery[];
  /** Failed deliveries per sequence so far, for the backoff. */
  failures: Map<number, number>;
  /** Sleeping workers to wake on new work. */
  waiters: Set<() => void>;
}

interface StreamState {
  /** Stored messages; `messages[i].seq === firstSeq + i`. */
  messages: StoredMessage[];
  firstSeq: number;
  /** Message id → publish time, in publish order (for pruning the window). */
  seen: Map<string, number>;
  durables: Map<string, DurableState>;
}

const silentLog: BusLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The in-process bus for embedded mode and tests. It keeps JetStream's guarantees that
 * callers rely on: a message id seen within the duplicate window is dropped; a durable
 * consumer keeps its position across stop/start and shares it between workers (each message
 * goes to one of them); a handler that throws gets the message again after a delay; a
 * subscriber sees live messages matching its wildcard pattern. Nothing survives the process.
 */
export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const log = options.log ?? silentLog;
  const baseDelay = options.redeliveryDelayMs ?? 500;
  const maxMessages = options.maxMessagesPerStream ?? 100_000;
  const now = options.now ?? Date.now;
  const state: Record<StreamKey, StreamState> = { audit: newStream(), change: newStream() };
  const subscribers = new Set<{ pattern: string; handler: (message: BusMessage) => void }>();
  const running = new Set<Subscription>();
  let closed = false;

  function durableState(stream: StreamKey, durable: string): DurableState {
    const streamState = state[stream];
    let durableState = streamState.durables.get(durable);
    if (!durableState) {
      // Like JetStream's default deliver policy "all": a new durable starts at the oldest
      // message still kept.
      durableState = {
        nextSeq: streamState.firstSeq,
        redeliveries: [],
        failures: new Map(),
        waiters: new Set(),
      };
      streamState.durables.set(durable, durableState);
    }
    return durableState;
  }

  function wake(durable: DurableState): void {
    for (const waiter of durable.waiters) waiter();
    durable.waiters.clear();
  }

  /** The next message for a worker: a due redelivery first, then the next new message. */
  function take(streamState: StreamState, durable: DurableState): StoredMessage | undefined {
    const first = durable.redeliveries[0];
    if (first && first.dueAt <= Date.now()) {
      durable.redeliveries.shift();
      return first.message;
    }
    // Messages discarded by the size limit are skipped, as JetStream does.
    if (durable.nextSeq < streamState.firstSeq) durable.nextSeq = streamState.firstSeq;
    const message = streamState.messages[durable.nextSeq - streamState.firstSeq];
    if (message) durable.nextSeq++;
    return message;
  }

  return {
    kind: "memory",

    async publish(subject: string, data: Uint8Array, publishOptions: PublishOptions) {
      if (closed) throw new Error("bus closed");
      assertPublishSubject(subject);
      const stream = streamOf(subject);
      // JetStream answers "no responders" for a subject no stream captures.
      if (!stream) throw new Error(`no stream captures subject ${subject}`);
      const streamState = state[stream];
      const at = now();
      for (const [id, time] of streamState.seen) {
        if (at - time < duplicateWindowMs) break;
        streamState.seen.delete(id);
      }
      if (streamState.seen.has(publishOptions.msgId)) return;
      streamState.seen.set(publishOptions.msgId, at);

      const message: StoredMessage = {
        seq: streamState.firstSeq + streamState.messages.length,
        subject,
        // A copy, so the publisher may reuse its buffer (Bus.publish): not data.slice(),
        // which on a Buffer is a view of the same memory.
        data: new Uint8Array(data),
        headers: lowerCaseKeys(publishOptions.headers ?? {}),
      };
      streamState.messages.push(message);
      // Trimmed in chunks of a sixteenth: Array#shift is O(n), and shifting one message per
      // publish at the limit made each publish cost ~100 µs on a 100k-message stream.
      const overflow = streamState.messages.length - maxMessages;
      if (overflow >= Math.max(1, maxMessages >> 4)) {
        streamState.messages.splice(0, overflow);
        streamState.firstSeq += overflow;
      }
      for (const durable of streamState.durables.values()) wake(durable);
      for (const subscriber of subscribers) {
        if (!subjectMatches(subscriber.pattern, subject)) continue;
        const copy = toBusMessage(message);
        // Asynchronous like a NATS callback, so a subscriber never delays or fails a publish.
        queueMicrotask(() => {
          try {
            subscriber.handler(copy);
          } catch (error) {
            log.warn({ err: error, subject }, "bus subscriber failed");
          }
        });
      }
    },

    consume(consumeOptions: ConsumeOptions): Subscription {
      if (closed) throw new Error("bus closed");
      const streamState = state[consumeOptions.stream];
      const durable = durableState(consumeOptions.stream, consumeOptions.durable);
      // `concurrency` workers share this subscription, like as many competing consumers.
      const concurrency = Math.max(1, Math.floor(consumeOptions.concurrency ?? 1));
      let stopped = false;
      const sleeping = new Set<() => void>();

      /** Sleeps until a publish, a stop, or the earliest pending redelivery falls due. */
      const idle = (): Promise<void> =>
        new Promise<void>((resolve) => {
          const due = durable.redeliveries[0]?.dueAt;
          const timer =
            due === undefined ? undefined : setTimeout(done, Math.max(0, due - Date.now()));
          function done(): void {
            clearTimeout(timer);
            durable.waiters.delete(done);
            sleeping.delete(done);
            resolve();
          }
          sleeping.add(done);
          durable.waiters.add(done);
        });

      const loop = async (): Promise<void> => {
        // Start after consume() has returned, as NATS does: a handler may refer to the
        // subscription the caller is still assigning.
        await Promise.resolve();
        while (!stopped) {
          const message = take(streamState, durable);
          if (!message) {
            await idle();
            continue;
          }
          try {
            await consumeOptions.handler(toBusMessage(message));
            durable.failures.delete(message.seq);
          } catch (error) {
            const failures = (durable.failures.get(message.seq) ?? 0) + 1;
            durable.failures.set(message.seq, failures);
            const delay = redeliveryDelay(baseDelay, failures);
            log.warn(
              { err: error, subject: message.subject, durable: consumeOptions.durable, delay },
              "bus handler failed; message will be redelivered",
            );
            durable.redeliveries.push({ message, dueAt: Date.now() + delay });
            durable.redeliveries.sort((a, b) => a.dueAt - b.dueAt || a.message.seq - b.message.seq);
            // Sleeping workers of the same durable must re-arm their timer for this one.
            wake(durable);
          }
        }
      };
      const done = Promise.all(Array.from({ length: concurrency }, loop)).then(() => {});
      const subscription: Subscription = {
        async stop() {
          if (stopped) return done;
          stopped = true;
          running.delete(subscription);
          for (const wake of [...sleeping]) wake();
          await done;
        },
      };
      running.add(subscription);
      return subscription;
    },

    subscribe(subject: string, handler: (message: BusMessage) => void): Subscription {
      if (closed) throw new Error("bus closed");
      const subscriber = { pattern: subject, handler };
      subscribers.add(subscriber);
      return {
        async stop() {
          subscribers.delete(subscriber);
        },
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      subscribers.clear();
      await Promise.all([...running].map((subscription) => subscription.stop()));
    },
  };
}

function newStream(): StreamState {
  return { messages: [], firstSeq: 1, seen: new Map(), durables: new Map() };
}

function toBusMessage(message: StoredMessage): BusMessage {
  return { subject: message.subject, data: message.data, headers: { ...message.headers } };
}

/** Header names are case-insensitive; the bus hands them out lower-case on both engines. */
export function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}
