import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type Authenticator, principalKey } from "../auth/principal.ts";
import { toConnectError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { observeStream, procedureOf, serverTracingInterceptor } from "../telemetry/index.ts";

/** Options for createServerInterceptors. */
export interface ServerInterceptorOptions {
  /** Resolves the `authorization` header value to a principal. */
  authenticate: Authenticator;
  log: Logger;
}

/**
 * Maps anything thrown to a ConnectError, logging Internal errors with their cause at error
 * level (the client sees only "internal error") and everything else at debug.
 */
function mapError(err: unknown, procedure: string, log: Logger): ConnectError {
  const connectErr = toConnectError(err);
  if (connectErr.code === Code.Internal || connectErr.code === Code.Unknown) {
    log.error({ procedure, err: connectErr.cause ?? connectErr }, "rpc failed");
  } else {
    log.debug(
      { procedure, code: Code[connectErr.code], reason: connectErr.rawMessage },
      "rpc refused",
    );
  }
  return connectErr;
}

/**
 * Authentication: an `authorization` header that does not authenticate ends the call with
 * Unauthenticated before the handler runs; no header means no principal, and the handler
 * decides (health and reflection need none, admin RPCs call requireAdmin).
 */
function authInterceptor({ authenticate, log }: ServerInterceptorOptions): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization") ?? undefined;
    if (header !== undefined) {
      let principal: Awaited<ReturnType<Authenticator>>;
      try {
        principal = await authenticate(header);
      } catch (err) {
        // Outside the error-mapping interceptor, so map here: a key-store outage must
        // surface as its own code, not as a bad key.
        throw mapError(err, procedureOf(req.method), log);
      }
      if (!principal) {
        log.debug({ procedure: procedureOf(req.method) }, "rpc unauthenticated");
        throw new ConnectError("invalid credentials", Code.Unauthenticated);
      }
      req.contextValues.set(principalKey, principal);
    }
    return next(req);
  };
}

/**
 * Error mapping: DomainError → its Connect code and message; ConnectError as is; anything
 * else → Internal "internal error" with the cause kept for the log only. Covers errors
 * thrown mid-stream too.
 */
function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const procedure = procedureOf(req.method);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      throw mapError(err, procedure, log);
    }
    if (!res.stream) return res;
    return {
      ...res,
      message: observeStream(res.message, {
        mapError: (err) => mapError(err, procedure, log),
        onEnd: () => {},
      }),
    };
  };
}

/** Logging: one debug line per call with procedure, code and duration; never the bodies. */
function loggingInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const procedure = procedureOf(req.method);
    const started = performance.now();
    const done = (err: unknown) => {
      const code = err === undefined ? "OK" : Code[ConnectError.from(err).code];
      const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      log.debug({ procedure, code, durationMs }, "rpc");
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      done(toConnectError(err));
      throw err;
    }
    if (!res.stream) {
      done(undefined);
      return res;
    }
    return {
      ...res,
      message: observeStream(res.message, {
        onEnd: (err) => done(err === undefined ? undefined : toConnectError(err)),
      }),
    };
  };
}

/**
 * The server interceptor chain every Latchkey RPC runs through, network or in-process,
 * outermost first: tracing (SERVER span continuing the caller's `traceparent`), auth
 * (principal into `principalKey`), error mapping (DomainError → Connect code, the rest →
 * Internal with the cause logged), logging (one debug line per call).
 */
export function createServerInterceptors(options: ServerInterceptorOptions): Interceptor[] {
  return [
    serverTracingInterceptor,
    authInterceptor(options),
    errorInterceptor(options.log),
    loggingInterceptor(options.log),
  ];
}
