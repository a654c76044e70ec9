import type { Bus } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import { TokenService } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { createOutboxRelay } from "../../libs/outbox/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { createTokenRoutes } from "./routes.ts";
import { createSecretHasher } from "./secret-hash.ts";

export { migrations } from "./store.ts";

/** Dependencies of the token component. */
export interface TokenComponentOptions {
  /** Database with the `token` schema migrated (see `migrations`). */
  db: Db;
  /** Where the outbox relay publishes change events. */
  bus: Bus;
  log: Logger;
  /**
   * HMAC key for secrets at rest (at least 32 characters): LATCHKEY_TOKEN_PEPPER in a
   * cluster; generated and kept in the data directory by the runtime in embedded mode.
   * Changing it invalidates every existing token.
   */
  pepper: string;
  /** Current time; defaults to the system clock. */
  clock?: () => Date;
}

/**
 * Creates the token component: TokenService routes plus the outbox relay that publishes
 * token change events (`latchkey.change.{tenant}.token`) after each commit.
 */
export function createTokenComponent(options: TokenComponentOptions): Component {
  const log = options.log;
  const relay = createOutboxRelay({ db: options.db, schema: "token", bus: options.bus, log });
  const routes = createTokenRoutes({
    db: options.db,
    hashSecret: createSecretHasher(options.pepper),
    clock: options.clock ?? (() => new Date()),
    kickRelay: () => relay.kick(),
    log,
  });
  return {
    name: "token",
    services: [TokenService],
    routes,
    async start() {
      relay.start();
    },
    async stop() {
      await relay.stop();
    },
  };
}
