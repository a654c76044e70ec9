import { readdir, readFile } from "node:fs/promises";
import type { Db, MigrateOptions, MigrateResult, Transaction } from "./types.ts";

/** A migration file: `0001_init.sql` → name `0001_init`. */
export interface MigrationFile {
  name: string;
  url: URL;
}

/** Schema names are interpolated into SQL, so only plain identifiers are accepted. */
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;
const filePattern = /^(\d{4})_[a-z0-9_-]+\.sql$/;

/** Throws unless `schema` is a lower-case SQL identifier safe to put in a statement. */
export function assertSchemaName(schema: string): void {
  if (!schemaPattern.test(schema)) {
    throw new Error(`invalid schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]*`);
  }
}

/**
 * The migration files of a folder in apply order. Anything not named `NNNN_name.sql` is
 * ignored (READMEs, tests); two files with the same number are an error, because their
 * relative order would be an accident of spelling.
 */
export async function listMigrations(dir: URL): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((file) => filePattern.test(file)).sort();
  const seen = new Map<string, string>();
  for (const file of names) {
    const number = file.slice(0, 4);
    const other = seen.get(number);
    if (other) throw new Error(`migrations ${other} and ${file} share the number ${number}`);
    seen.set(number, file);
  }
  return names.map((file) => ({ name: file.slice(0, -".sql".length), url: new URL(file, dir) }));
}

/**
 * SQL of the standard outbox table (libs/outbox). Rows are written in the same transaction
 * as the change they announce and published by the relay, oldest `seq` first; `sent_at`
 * stays null until NATS acknowledged the message.
 */
export function outboxTableSql(schema: string): string {
  assertSchemaName(schema);
  return `
    create table if not exists ${schema}.outbox (
      seq bigint generated always as identity primary key,
      id text not null unique,
      subject text not null,
      payload bytea not null,
      headers jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now(),
      sent_at timestamptz
    );
    create index if not exists outbox_unsent on ${schema}.outbox (seq) where sent_at is null;
  `;
}

/**
 * Migrations Latchkey itself owns, applied before the service's files and recorded in the
 * same table. Their names start with `latchkey_` so they never collide with `NNNN_` files.
 */
function builtinMigrations(options: MigrateOptions): { name: string; sql: string }[] {
  return options.outbox ? [{ name: "latchkey_outbox_1", sql: outboxTableSql(options.schema) }] : [];
}

/**
 * Takes the schema's migration lock until the transaction ends. Several replicas starting
 * at once all call migrate; the lock makes them take turns, so each file runs exactly once
 * and `create schema if not exists` never races (it can fail with a duplicate-key error on
 * pg_namespace when two sessions run it concurrently).
 */
async function lockSchema(tx: Transaction, schema: string): Promise<void> {
  await tx.query("select pg_advisory_xact_lock(hashtext($1))", [`latchkey.migrate.${schema}`]);
}

/**
 * Brings `schema` up to date: creates it and `{schema}.schema_migrations` if missing, the
 * standard outbox table when `outbox` is set, then applies each `NNNN_name.sql` of `dir`
 * not applied yet, in order, each in its own transaction together with its bookkeeping row.
 * Safe to run concurrently from several processes against one PostgreSQL database.
 */
export async function migrate(db: Db, options: MigrateOptions): Promise<MigrateResult> {
  const { schema } = options;
  assertSchemaName(schema);
  const files = await listMigrations(options.dir);

  await db.transaction(async (tx) => {
    await lockSchema(tx, schema);
    await tx.exec(`
      create schema if not exists ${schema};
      create table if not exists ${schema}.schema_migrations (
        name text primary key,
        applied_at timestamptz not null default now()
      );
    `);
  });

  const pending: { name: string; sql: () => Promise<string> }[] = [
    ...builtinMigrations(options).map((m) => ({ name: m.name, sql: async () => m.sql })),
    ...files.map((file) => ({ name: file.name, sql: () => readFile(file.url, "utf8") })),
  ];
  const applied: string[] = [];
  for (const migration of pending) {
    const sql = await migration.sql();
    const ran = await db.transaction(async (tx) => {
      await lockSchema(tx, schema);
      const done = await tx.query(`select 1 from ${schema}.schema_migrations where name = $1`, [
        migration.name,
      ]);
      if (done.rowCount > 0) return false;
      try {
        await tx.exec(sql);
      } catch (error) {
        throw new Error(
          `migration ${schema}/${migration.name} failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      await tx.query(`insert into ${schema}.schema_migrations (name) values ($1)`, [
        migration.name,
      ]);
      return true;
    });
    if (ran) applied.push(migration.name);
  }
  return { applied };
}

/** Names of the migrations already applied to `schema`, in order; empty when it has none. */
export async function appliedMigrations(db: Db, schema: string): Promise<string[]> {
  assertSchemaName(schema);
  const exists = await db.query<{ found: boolean }>("select to_regclass($1) is not null as found", [
    `${schema}.schema_migrations`,
  ]);
  if (!exists.rows[0]?.found) return [];
  const result = await db.query<{ name: string }>(
    `select name from ${schema}.schema_migrations order by name`,
  );
  return result.rows.map((row) => row.name);
}
