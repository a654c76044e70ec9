export { bearerInterceptor, createClientInterceptors } from "./client-interceptors.ts";
export { type ClientTransport, createClientTransport } from "./client-transport.ts";
export { createHealthState, type HealthState } from "./health.ts";
export {
  createInProcessTransport,
  type InProcessTransportOptions,
} from "./in-process-transport.ts";
export { reflectionRoutes } from "./reflection.ts";
export { createRpcServer } from "./rpc-server.ts";
export {
  createServerInterceptors,
  type ServerInterceptorOptions,
} from "./server-interceptors.ts";
export type {
  ClientTransportOptions,
  Component,
  RpcServer,
  RpcServerOptions,
  TlsFiles,
} from "./types.ts";
