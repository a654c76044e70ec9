import type { Interceptor } from "@connectrpc/connect";
import { clientTracingInterceptor } from "../telemetry/index.ts";

/** Sends `authorization: Bearer <credential>` on every call. */
export function bearerInterceptor(credential: string): Interceptor {
  const value = `Bearer ${credential}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

/**
 * The client interceptor chain: the CLIENT span first, so `traceparent` names it, then
 * the credential when there is one.
 */
export function createClientInterceptors(credential: string | undefined): Interceptor[] {
  return credential
    ? [clientTracingInterceptor, bearerInterceptor(credential)]
    : [clientTracingInterceptor];
}
