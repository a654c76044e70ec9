import { parseArgs } from "node:util";
import { createAdminKeyStore, type Role } from "../libs/auth/index.ts";
import { loadEnv, storageEnv } from "../libs/config/index.ts";
import { type Db, migrate } from "../libs/db/index.ts";
import { UsageError } from "./admin.ts";
import { allMigrations, openStorage } from "./run-services.ts";

async function withDb<T>(env: NodeJS.ProcessEnv, fn: (db: Db) => Promise<T>): Promise<T> {
  const stoppers: (() => Promise<void>)[] = [];
  try {
    const db = await openStorage(loadEnv(storageEnv, env), stoppers);
    stoppers.push(() => db.close());
    return await fn(db);
  } finally {
    for (const stop of stoppers.toReversed()) await stop();
  }
}

/**
 * `latchkey migrate`: applies every schema's pending migrations (auth, token, policy,
 * vault, audit) and exits; run it as a Kubernetes Job before rolling out a new version.
 */
export async function migrateCommand(env: NodeJS.ProcessEnv): Promise<void> {
  await withDb(env, async (db) => {
    for (const migration of allMigrations) {
      await migrate(db, migration);
      process.stdout.write(`migrated ${migration.schema}\n`);
    }
  });
}

/**
 * `latchkey admin-key create|list|revoke`: manages admin keys directly in the database
 * (there is no RPC for it: whoever runs this already holds the database credentials).
 */
export async function adminKeyCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      role: { type: "string", default: "reader" },
      tenant: { type: "string", multiple: true },
      "display-name": { type: "string", default: "" },
    },
  });
  await withDb(env, async (db) => {
    const store = createAdminKeyStore(db);
    if (verb === "create") {
      const { key, record } = await store.create({
        role: values.role as Role,
        tenants: values.tenant ?? [],
        displayName: values["display-name"],
      });
      // The key first, alone on its line, so scripts can capture it; it is not stored.
      process.stdout.write(`${key}\n${JSON.stringify(record)}\n`);
    } else if (verb === "list") {
      for (const record of await store.list()) process.stdout.write(`${JSON.stringify(record)}\n`);
    } else if (verb === "revoke" && positionals[0]) {
      const revoked = await store.revoke(positionals[0]);
      process.stdout.write(
        revoked ? `revoked ${positionals[0]}\n` : `no live key ${positionals[0]}\n`,
      );
    } else {
      throw new UsageError(
        "usage: latchkey admin-key create --role admin|operator|auditor|reader --tenant T [--tenant T2] | list | revoke KEY_ID",
      );
    }
  });
}
