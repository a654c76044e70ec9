import type { Db } from "../../libs/db/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import type { SecretHasher } from "./secret-hash.ts";

/** What the TokenService handlers need; built once by createTokenComponent. */
export interface TokenServiceDeps {
  db: Db;
  /** HMAC-SHA-256 with the server pepper. */
  hashSecret: SecretHasher;
  /** The current time; tests move it to expire tokens without waiting. */
  clock: () => Date;
  /** Called after a commit that enqueued change events, so they go out at once. */
  kickRelay: () => void;
  log: Logger;
}
