import type { Db } from "../../libs/db/types.ts";
import type { KeyEncryptionKeys } from "./keyring.ts";

/** What the vault's handlers share, built once by createVaultComponent. */
export interface VaultDeps {
  db: Db;
  keys: KeyEncryptionKeys;
  /** How long the gateway may keep resolved material, in milliseconds. */
  leaseMs: number;
  /** Called after a transaction that enqueued change events committed: wakes the relay. */
  kickRelay: () => void;
  /** The clock for create and update times. */
  clock: () => Date;
}
