/** Something SQL runs on: the database itself or an open transaction. */
export interface Queryable {
  /**
   * Runs one statement with `$1..$n` parameters. int8/bigint and numeric columns come back
   * as JavaScript numbers on both engines (values past 2^53 are not used by Latchkey);
   * timestamptz as Date; bytea as Uint8Array; jsonb as parsed JSON; text[] as string[].
   */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number }>;
}

/**
 * An open transaction. Handlers usually type it as `Queryable`; `exec` is there for
 * migrations, which run several statements inside one transaction.
 */
export interface Transaction extends Queryable {
  /** Runs several statements at once, without parameters, inside the transaction. */
  exec(sql: string): Promise<void>;
}

/** One interface over PostgreSQL (`pg` Pool) and embedded PGlite. */
export interface Db extends Queryable {
  /** Which engine is behind it. */
  readonly kind: "postgres" | "pglite";
  /**
   * Runs `fn` in a transaction: commit when it resolves, rollback when it throws. On PGlite
   * (one connection) transactions and queries run one at a time; on PostgreSQL each
   * transaction holds one pooled connection. Never call `db.query` from inside `fn`: use `tx`.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs several statements at once, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Closes the pool or the embedded database. */
  close(): Promise<void>;
}

/** Options for openDb. */
export interface OpenDbOptions {
  /** PostgreSQL URL; when set, a `pg` Pool is used. */
  url?: string;
  /** PGlite data directory, used when url is unset; `memory://` for an in-memory database. */
  dataDir?: string;
  /** Pool size for PostgreSQL (default 10). */
  maxConnections?: number;
}

/** Options for migrate. */
export interface MigrateOptions {
  /** Schema the migrations belong to (`token`, `policy`, ...); created if missing. */
  schema: string;
  /** Folder of `NNNN_name.sql` files, applied in order, each once, each in a transaction. */
  dir: URL;
  /** Also create the standard outbox table `{schema}.outbox` (services that publish changes). */
  outbox?: boolean;
}

/** What migrate did. */
export interface MigrateResult {
  /** Names of the migrations applied by this call, in order (empty when up to date). */
  applied: string[];
}
