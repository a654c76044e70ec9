import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { type Authenticator, type Principal, principalKey } from "../auth/principal.ts";
import { notFound } from "../errors/index.ts";
import { GetTokenResponseSchema, TokenService } from "../gen/latchkey/token/v1/token_pb.js";
import { createLogger, type Logger } from "../log/index.ts";

// Test support for libs/rpc, not exported from index.

/** Part of the failing call's error message: it must reach the log and never the client. */
export const secretInError = "s3cret-db-password";

/**
 * A partial TokenService. GetToken answers a fixed token whose display name says who
 * called; `missing` and `boom` fail on purpose; `slow` waits for `options.slow`. Every
 * other RPC is left out and answers Unimplemented.
 */
export function createTestRoutes(options: { slow?: Promise<void> } = {}) {
  return (router: ConnectRouter) => testService(router, options.slow);
}

/** The test service with no slow call. */
export const testRoutes = createTestRoutes();

function testService(router: ConnectRouter, slow: Promise<void> | undefined): void {
  router.service(TokenService, {
    async getToken(req, ctx) {
      // Held open until the test resolves `slow`: an in-flight call during stop().
      if (req.name === "tenants/acme/tokens/slow") await slow;
      if (req.name === "tenants/acme/tokens/missing") {
        throw notFound("token tenants/acme/tokens/missing not found");
      }
      if (req.name === "tenants/acme/tokens/boom") {
        throw new Error(`connection refused: ${secretInError}`);
      }
      const principal = ctx.values.get(principalKey);
      return create(GetTokenResponseSchema, {
        token: { name: req.name, displayName: describe(principal) },
      });
    },
  });
}

function describe(principal: Principal | undefined): string {
  if (!principal) return "anonymous";
  return principal.kind === "admin" ? `admin:${principal.keyId}` : "gateway";
}

/** `Bearer good` is an admin key, `Bearer gw` the gateway identity, anything else fails. */
export const testAuthenticate: Authenticator = async (header) => {
  if (header === "Bearer good") {
    return { kind: "admin", keyId: "key_test", role: "admin", tenants: ["*"] };
  }
  if (header === "Bearer gw") return { kind: "gateway" };
  return undefined;
};

/** A debug-level logger whose lines the test can read. */
export function captureLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: "debug", component: "test", destination });
  return {
    log,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
