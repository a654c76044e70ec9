import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Transaction } from "./types.ts";

/** The in-memory data directory understood by PGlite. */
export const memoryDataDir = "memory://";

const toNumber = (value: string): number => Number(value);

/** PostgreSQL's bytea type id. */
const byteaOid = 17;

/**
 * bytea parameters as hex text through Buffer's native encoder. PGlite's own serializer
 * builds a string per byte; for the audit ingest's one-parameter batches (all events'
 * bytes, ~300 KiB per INSERT) that was 6% of the embedded process's CPU, and its garbage
 * more. Any Uint8Array view is accepted, like PGlite's.
 */
function serializeBytea(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new TypeError("a bytea parameter must be a Uint8Array");
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
}

/** bytea results as a Buffer decoded natively (PGlite's parser is a JS loop per byte). */
const parseBytea = (value: string): Uint8Array => Buffer.from(value.slice(2), "hex");

/** Options for createPgliteDb. */
export interface PgliteDbOptions {
  /** A folder (created if missing) or `memory://`. */
  dataDir: string;
}

interface PgliteQueryable {
  query<R>(
    sql: string,
    params?: unknown[],
  ): Promise<{ rows: R[]; rowCount?: number; affectedRows?: number }>;
}

async function run<R>(
  target: PgliteQueryable,
  sql: string,
  params?: readonly unknown[],
): Promise<{ rows: R[]; rowCount: number }> {
  const result = await target.query<R>(sql, params ? [...params] : undefined);
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? 0 };
}

/**
 * Opens an embedded PGlite database behind the Db interface. PGlite is one connection:
 * its own mutex runs queries and transactions one at a time, so a plain query issued while
 * another caller's transaction is open waits for it instead of running inside it.
 */
export async function createPgliteDb(options: PgliteDbOptions): Promise<Db> {
  const dataDir = options.dataDir;
  if (!dataDir.includes("://")) await mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir, {
    // Same results as the `pg` pool: int8 and numeric as numbers (PGlite would otherwise
    // return a bigint past 2^53 and numeric as a string).
    parsers: { 20: toNumber, 1700: toNumber, [byteaOid]: parseBytea },
    serializers: { [byteaOid]: serializeBytea },
  });

  return {
    kind: "pglite",
    query: (sql, params) => run(pglite, sql, params),
    transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      return pglite.transaction((tx) =>
        fn({
          query: (sql, params) => run(tx, sql, params),
          async exec(sql) {
            await tx.exec(sql);
          },
        }),
      );
    },
    async exec(sql) {
      // The extended protocol behind query() takes one statement; exec() takes several.
      await pglite.exec(sql);
    },
    close: () => pglite.close(),
  };
}
