import { createPgliteDb } from "./pglite.ts";
import { createPostgresDb } from "./postgres.ts";
import type { Db, OpenDbOptions } from "./types.ts";

export { isUniqueViolation, sqlState } from "./errors.ts";
export {
  appliedMigrations,
  assertSchemaName,
  listMigrations,
  type MigrationFile,
  migrate,
  outboxTableSql,
} from "./migrate.ts";
export { memoryDataDir } from "./pglite.ts";
export type * from "./types.ts";

/**
 * Opens the database: a PostgreSQL pool when `url` is set (cluster mode), otherwise
 * embedded PGlite in `dataDir` (a folder, created if missing, or `memory://`). Both answer
 * the same SQL with the same result types (int8 and numeric as numbers).
 */
export async function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.url) {
    return createPostgresDb({
      url: options.url,
      ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }),
    });
  }
  if (options.dataDir) return createPgliteDb({ dataDir: options.dataDir });
  throw new Error("openDb needs a PostgreSQL url or a PGlite dataDir");
}
