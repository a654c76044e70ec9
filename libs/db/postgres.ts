import pg from "pg";
import type { Db, Transaction } from "./types.ts";

/** PostgreSQL type oids whose default `pg` parsing (strings) Latchkey overrides. */
const oids = { int8: 20, numeric: 1700, int8Array: 1016, numericArray: 1231 } as const;

/** `pg`'s own text parser for a type oid (its typing only lists the oids it names). */
const builtinParser = pg.types.getTypeParser as (oid: number) => (value: string) => unknown;
/** The parsers of int4[] (parseInt per element) and float8[] (parseFloat per element). */
const parseIntArray = builtinParser(1007);
const parseFloatArray = builtinParser(1022);

/**
 * Type parsers for one pool. They are passed per pool instead of through the global
 * `pg.types.setTypeParser` so importing this module changes nothing for other `pg` users.
 * int8 (`count(*)`, bigserial) and numeric come back as numbers, as on PGlite: Latchkey never
 * stores values past 2^53.
 */
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format === undefined || format === "text") {
      switch (oid) {
        case oids.int8:
        case oids.numeric:
          return (value: string) => Number(value);
        case oids.int8Array:
          return parseIntArray;
        case oids.numericArray:
          return parseFloatArray;
      }
    }
    return pg.types.getTypeParser(oid, format ?? "text");
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/** Options for createPostgresDb. */
export interface PostgresDbOptions {
  url: string;
  /** Pool size (default 10). */
  maxConnections?: number;
}

/** Opens a `pg` Pool behind the Db interface; checks the connection before returning. */
export async function createPostgresDb(options: PostgresDbOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    types: typeParsers,
  });
  // An idle client that loses its connection (server restart) emits on the pool; without a
  // listener Node would crash the process. The next query simply gets a fresh client.
  pool.on("error", () => {});
  try {
    await pool.query("select 1");
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }

  const run = async <R>(
    target: pg.Pool | pg.PoolClient,
    sql: string,
    params?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number }> => {
    const result = await target.query(sql, params as unknown[] | undefined);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
  };

  return {
    kind: "postgres",
    query: (sql, params) => run(pool, sql, params),
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const tx: Transaction = {
          query: (sql, params) => run(client, sql, params),
          async exec(sql) {
            await client.query(sql);
          },
        };
        try {
          const result = await fn(tx);
          await client.query("COMMIT");
          return result;
        } catch (error) {
          try {
            await client.query("ROLLBACK");
          } catch (rollbackError) {
            // The connection is unusable: destroy it instead of returning it to the pool.
            broken = rollbackError as Error;
          }
          throw error;
        }
      } finally {
        client.release(broken);
      }
    },
    async exec(sql) {
      // The simple query protocol (no parameters) accepts several statements in one call.
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
