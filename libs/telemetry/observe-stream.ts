/** Hooks for observeStream. */
export interface StreamHooks {
  /** Wraps each pull from the source, e.g. to run it inside a span's context. */
  around?: <R>(pull: () => Promise<R>) => Promise<R>;
  /** Replaces an error thrown by the source before it reaches the consumer. */
  mapError?: (err: unknown) => unknown;
  /** Called once: when the source ends, fails (with the mapped error) or is abandoned. */
  onEnd: (err: unknown) => void;
}

/**
 * Wraps an async iterable so interceptors can see a streamed response finish. Connect
 * resolves `next(req)` for a stream before any message is produced, so spans, logs and
 * error mapping for server streams have to follow the iteration instead.
 *
 * A hand-written iterator rather than an async generator: a generator suspended in
 * `await source.next()` cannot be returned early, which would keep a cancelled stream's
 * span open.
 */
export function observeStream<T>(source: AsyncIterable<T>, hooks: StreamHooks): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      let ended = false;
      const end = (err: unknown) => {
        if (ended) return;
        ended = true;
        hooks.onEnd(err);
      };
      const pull = <R>(fn: () => Promise<R>) => (hooks.around ? hooks.around(fn) : fn());
      const settle = async (fn: () => Promise<IteratorResult<T>>) => {
        try {
          const result = await pull(fn);
          if (result.done) end(undefined);
          return result;
        } catch (err) {
          const mapped = hooks.mapError ? hooks.mapError(err) : err;
          end(mapped);
          throw mapped;
        }
      };
      return {
        next: () => settle(() => it.next()),
        return: (value?: unknown) => {
          // Abandoned by the consumer (client went away): not an error of the stream.
          if (!it.return) {
            end(undefined);
            return Promise.resolve({ done: true, value } as IteratorResult<T>);
          }
          const ret = it.return.bind(it);
          return settle(() => ret(value)).finally(() => end(undefined));
        },
        throw: (err?: unknown) => {
          if (!it.throw) {
            const mapped = hooks.mapError ? hooks.mapError(err) : err;
            end(mapped);
            return Promise.reject(mapped);
          }
          const thr = it.throw.bind(it);
          return settle(() => thr(err));
        },
      };
    },
  };
}
