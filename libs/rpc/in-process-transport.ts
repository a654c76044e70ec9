import { type ConnectRouter, createRouterTransport, type Transport } from "@connectrpc/connect";
import type { Authenticator } from "../auth/principal.ts";
import type { Logger } from "../log/index.ts";
import { createClientInterceptors } from "./client-interceptors.ts";
import { createServerInterceptors } from "./server-interceptors.ts";

/** Options for createInProcessTransport. */
export interface InProcessTransportOptions {
  /** Registers the services to call. */
  routes: (router: ConnectRouter) => void;
  /** The same authenticator the network server uses. */
  authenticate: Authenticator;
  log: Logger;
  /** Sent as `authorization: Bearer <credential>` (admin key or gateway key). */
  credential?: string;
}

/**
 * A transport that calls `routes` in this process (`latchkey run all`, tests) through the
 * same server interceptors as the network server, so auth, error mapping, logging and
 * tracing behave exactly as they do across the network. Messages are still serialized,
 * which keeps callers from sharing mutable objects with the handler.
 */
export function createInProcessTransport(options: InProcessTransportOptions): Transport {
  return createRouterTransport(options.routes, {
    router: {
      interceptors: createServerInterceptors({
        authenticate: options.authenticate,
        log: options.log,
      }),
    },
    transport: { interceptors: createClientInterceptors(options.credential) },
  });
}
