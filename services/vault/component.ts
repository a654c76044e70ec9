import type { Bus } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import { VaultService } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { createOutboxRelay } from "../../libs/outbox/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import type { KeyEncryptionKeys } from "./keyring.ts";
import { vaultRoutes } from "./routes.ts";

export { migrations } from "./store.ts";

/** Dependencies of the vault component. */
export interface VaultComponentOptions {
  db: Db;
  bus: Bus;
  log: Logger;
  /** The key-encryption keys (from config, a file the runtime generated, or a KMS). */
  keys: KeyEncryptionKeys;
  /** Lease on resolved material, in milliseconds (default 300 000: five minutes). */
  leaseMs?: number;
  /** Current time; defaults to the system clock. */
  clock?: () => Date;
}

/**
 * Creates the vault component: VaultService over `db`, and an outbox relay publishing
 * credential change events to `bus`. Migrations (`migrations`) must have run first.
 */
export function createVaultComponent(options: VaultComponentOptions): Component {
  const relay = createOutboxRelay({
    db: options.db,
    schema: "vault",
    bus: options.bus,
    log: options.log,
  });
  const routes = vaultRoutes({
    db: options.db,
    keys: options.keys,
    leaseMs: options.leaseMs ?? 300_000,
    kickRelay: () => relay.kick(),
    clock: options.clock ?? (() => new Date()),
  });
  return {
    name: "vault",
    services: [VaultService],
    routes,
    async start() {
      relay.start();
    },
    async stop() {
      await relay.stop();
    },
  };
}
