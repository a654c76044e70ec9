import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";

/** grpc.health.v1 state for one server: "" (the whole server) and each service name. */
export interface HealthState {
  /** Registers grpc.health.v1.Health. */
  routes(router: ConnectRouter): void;
  /** Sets every known service (and "") to SERVING or NOT_SERVING, notifying watchers. */
  setServing(serving: boolean): void;
  /** Whether the server currently reports SERVING. */
  serving(): boolean;
  /** Ends every Watch stream (after it has sent the latest status): server shutdown. */
  close(): void;
}

/**
 * The standard gRPC health service (grpc/grpc health-checking.md): Check answers NotFound
 * for an unknown service; Watch answers SERVICE_UNKNOWN for one and keeps streaming, sending
 * each change until the call ends or the server shuts down.
 */
export function createHealthState(serviceNames: readonly string[]): HealthState {
  const known = new Set(["", ...serviceNames]);
  let status: ServingStatus = ServingStatus.NOT_SERVING;
  let closed = false;
  const watchers = new Set<() => void>();
  const statusOf = (service: string) =>
    known.has(service) ? status : ServingStatus.SERVICE_UNKNOWN;
  const notify = () => {
    for (const wake of watchers) wake();
  };

  return {
    routes(router) {
      router.service(Health, {
        check(req) {
          if (!known.has(req.service)) {
            throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
          }
          return create(HealthCheckResponseSchema, { status });
        },
        list() {
          const statuses: Record<string, ReturnType<typeof response>> = {};
          for (const name of known) statuses[name] = response(status);
          return { statuses };
        },
        async *watch(req, ctx) {
          let sent: ServingStatus | undefined;
          let wake: (() => void) | undefined;
          const waker = () => wake?.();
          watchers.add(waker);
          ctx.signal.addEventListener("abort", waker);
          try {
            for (;;) {
              const current = statusOf(req.service);
              // Only changes are sent (the spec allows dropping repeats).
              if (current !== sent) {
                sent = current;
                yield response(current);
              }
              if (closed || ctx.signal.aborted) return;
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
            }
          } finally {
            watchers.delete(waker);
            ctx.signal.removeEventListener("abort", waker);
          }
        },
      });
    },
    setServing(serving) {
      status = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
      notify();
    },
    serving: () => status === ServingStatus.SERVING,
    close() {
      closed = true;
      notify();
    },
  };
}

function response(status: ServingStatus) {
  return create(HealthCheckResponseSchema, { status });
}
