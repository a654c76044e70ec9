/**
 * The database engines the policy tests run on: PostgreSQL (a fresh database, skipped with a
 * reason when no server is reachable, failing on CI) and embedded PGlite (the default of
 * `latchkey run all`), so the same SQL is proven on both.
 */
import { migrate } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { embeddedDb, skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { migrations } from "./store.ts";

/** One engine: a name for the suite, a skip reason, and a way to open a migrated Db. */
export interface TestEngine {
  name: string;
  skip: string | undefined;
  open(): Promise<{ db: Db; close(): Promise<void> }>;
}

/** PostgreSQL and PGlite, each with the `policy` schema migrated. */
export async function testEngines(): Promise<TestEngine[]> {
  return [
    {
      name: "PostgreSQL",
      skip: await skipUnless("postgres"),
      open: () => testDatabase({ migrate: [migrations] }),
    },
    {
      name: "PGlite",
      skip: undefined,
      async open() {
        // Shared by every test of the process (a PGlite start takes seconds); tests use
        // tenants of their own, and migrating twice is a no-op.
        const db = await embeddedDb();
        await migrate(db, migrations);
        return { db, close: async () => {} };
      },
    },
  ];
}
