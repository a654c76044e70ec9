import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { embeddedDb, skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { appliedMigrations, isUniqueViolation, migrate, openDb, sqlState } from "./index.ts";
import type { Db } from "./types.ts";

// Resolved before any suite is declared: a top-level await between suites would let
// the file's root hooks (the shared PGlite's close) run before the later suites.
const postgresSkip = await skipUnless("postgres");

const migrations = new URL("./testdata/migrations/", import.meta.url);
const broken = new URL("./testdata/broken/", import.meta.url);
const race = new URL("./testdata/race/", import.meta.url);

/**
 * The behaviour both engines must share; services run the same SQL on either, so every
 * assertion here runs against PostgreSQL and PGlite alike.
 */
function dbContract(getDb: () => Db): void {
  test("migrate creates the schema, applies files in order once, and records them", async () => {
    const db = getDb();
    const first = await migrate(db, { schema: "dbtest", dir: migrations, outbox: true });
    assert.deepEqual(first.applied, ["latchkey_outbox_1", "0001_init", "0002_counter"]);
    const second = await migrate(db, { schema: "dbtest", dir: migrations, outbox: true });
    assert.deepEqual(second.applied, []);
    const counter = await db.query<{ n: number; note: string }>("select * from dbtest.counter");
    assert.deepEqual(counter.rows, [{ n: 1, note: "0002 applied" }]);
    assert.deepEqual(await appliedMigrations(db, "dbtest"), [
      "0001_init",
      "0002_counter",
      "latchkey_outbox_1",
    ]);
    assert.deepEqual(await appliedMigrations(db, "no_such_schema"), []);
  });

  test("the outbox table has the columns libs/outbox relies on", async () => {
    const db = getDb();
    const columns = await db.query<{ column_name: string; is_nullable: string }>(
      `select column_name, is_nullable from information_schema.columns
       where table_schema = 'dbtest' and table_name = 'outbox' order by ordinal_position`,
    );
    assert.deepEqual(
      columns.rows.map((c) => `${c.column_name}:${c.is_nullable}`),
      ["seq:NO", "id:NO", "subject:NO", "payload:NO", "headers:NO", "created_at:NO", "sent_at:YES"],
    );
  });

  test("results use JavaScript types: int8 and numeric as numbers", async () => {
    const db = getDb();
    const inserted = await db.query(
      "insert into dbtest.items (id, size, price, tags) values ($1, $2, $3, $4), ($5, $6, $7, $8)",
      ["a", 2 ** 40, "12.50", ["x", "y"], "b", 7, null, []],
    );
    assert.equal(inserted.rowCount, 2);
    const { rows } = await db.query<{
      id: string;
      size: number;
      price: number | null;
      tags: string[];
      created_at: Date;
    }>("select * from dbtest.items where id = any($1) order by id", [["a", "b"]]);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]?.size, 2 ** 40);
    assert.equal(rows[0]?.price, 12.5);
    assert.deepEqual(rows[0]?.tags, ["x", "y"]);
    assert.ok(rows[0]?.created_at instanceof Date);
    assert.equal(rows[1]?.price, null);

    const count = await db.query<{ n: number; total: number }>(
      "select count(*) as n, sum(size) as total from dbtest.items where id = any($1)",
      [["a", "b"]],
    );
    assert.deepEqual(count.rows[0], { n: 2, total: 2 ** 40 + 7 });
    const arrays = await db.query<{ ints: number[]; nums: number[] }>(
      "select array[1, 2]::int8[] as ints, array[1.5, 2]::numeric[] as nums",
    );
    assert.deepEqual(arrays.rows[0], { ints: [1, 2], nums: [1.5, 2] });
  });

  test("bytea comes back as bytes and jsonb as parsed JSON", async () => {
    const db = getDb();
    const { rows } = await db.query<{ payload: Uint8Array; headers: unknown }>(
      "select $1::bytea as payload, $2::jsonb as headers",
      [new Uint8Array([0, 1, 255]), JSON.stringify({ traceparent: "00-abc", list: [1] })],
    );
    assert.ok(rows[0]?.payload instanceof Uint8Array);
    assert.deepEqual([...(rows[0]?.payload ?? [])], [0, 1, 255]);
    assert.deepEqual(rows[0]?.headers, { traceparent: "00-abc", list: [1] });
  });

  test("a bytea parameter may be a view into a larger buffer, or empty", async () => {
    const db = getDb();
    const whole = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    const view = whole.subarray(3, 65_539);
    const { rows } = await db.query<{ view: Uint8Array; empty: Uint8Array; size: number }>(
      "select $1::bytea as view, $2::bytea as empty, length($1::bytea) as size",
      [view, new Uint8Array(0)],
    );
    assert.equal(rows[0]?.size, view.byteLength);
    assert.deepEqual(Buffer.from(rows[0]?.view ?? []), Buffer.from(view));
    assert.equal(rows[0]?.empty.byteLength, 0);
  });

  test("rowCount counts changed rows", async () => {
    const db = getDb();
    await db.query("insert into dbtest.items (id, size) values ('rc1', 1), ('rc2', 1)");
    const updated = await db.query("update dbtest.items set size = 3 where id like 'rc%'");
    assert.equal(updated.rowCount, 2);
    const none = await db.query("delete from dbtest.items where id = 'nothing'");
    assert.equal(none.rowCount, 0);
  });

  test("a transaction commits when fn resolves and returns its value", async () => {
    const db = getDb();
    const value = await db.transaction(async (tx) => {
      await tx.query("insert into dbtest.items (id, size) values ('commit', 1)");
      return 42;
    });
    assert.equal(value, 42);
    const { rowCount } = await db.query("select 1 from dbtest.items where id = 'commit'");
    assert.equal(rowCount, 1);
  });

  test("a transaction rolls back when fn throws, and the error reaches the caller", async () => {
    const db = getDb();
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("insert into dbtest.items (id, size) values ('rollback', 1)");
        throw new Error("boom");
      }),
      /boom/,
    );
    const { rowCount } = await db.query("select 1 from dbtest.items where id = 'rollback'");
    assert.equal(rowCount, 0);
  });

  test("a failed statement aborts the transaction and leaves the db usable", async () => {
    const db = getDb();
    await db.query("insert into dbtest.items (id, size) values ('dup', 1)");
    const error = await db
      .transaction(async (tx) => {
        await tx.query("insert into dbtest.items (id, size) values ('dup-side', 1)");
        await tx.query("insert into dbtest.items (id, size) values ('dup', 2)");
      })
      .catch((e: unknown) => e);
    assert.equal(sqlState(error), "23505");
    assert.ok(isUniqueViolation(error));
    assert.ok(isUniqueViolation(error, "items_pkey"));
    assert.ok(!isUniqueViolation(error, "other_constraint"));
    assert.ok(!isUniqueViolation(new Error("plain")));
    const { rowCount } = await db.query("select 1 from dbtest.items where id = 'dup-side'");
    assert.equal(rowCount, 0);
    // Many more transactions than pool connections: a leaked connection would hang here.
    for (let i = 0; i < 12; i++) {
      await db.transaction((tx) => tx.query("select 1"));
    }
  });

  test("concurrent transactions and queries never run inside each other", async () => {
    const db = getDb();
    let aInserted!: () => void;
    const aStarted = new Promise<void>((resolve) => {
      aInserted = resolve;
    });
    const a = db.transaction(async (tx) => {
      await tx.query("insert into dbtest.items (id, size) values ('iso-a', 1)");
      aInserted();
      // Give the others every chance to slip into this transaction if they could.
      await sleep(50);
      throw new Error("abort a");
    });
    await aStarted;
    const b = db.transaction(async (tx) => {
      await tx.query("insert into dbtest.items (id, size) values ('iso-b', 1)");
    });
    const c = db.query("insert into dbtest.items (id, size) values ('iso-c', 1)");
    await assert.rejects(a, /abort a/);
    await Promise.all([b, c]);
    const { rows } = await db.query<{ id: string }>(
      "select id from dbtest.items where id like 'iso-%' order by id",
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      ["iso-b", "iso-c"],
    );
  });

  test("exec runs several statements, in and out of transactions", async () => {
    const db = getDb();
    await db.exec(`
      insert into dbtest.items (id, size) values ('ex1', 1);
      insert into dbtest.items (id, size) values ('ex2', 1);
    `);
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.exec(`
          insert into dbtest.items (id, size) values ('ex3', 1);
          insert into dbtest.items (id, size) values ('ex4', 1);
        `);
        throw new Error("undo");
      }),
    );
    const { rows } = await db.query<{ id: string }>(
      "select id from dbtest.items where id like 'ex%' order by id",
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      ["ex1", "ex2"],
    );
  });

  test("a failing migration rolls back whole and is retried next time", async () => {
    const db = getDb();
    await assert.rejects(migrate(db, { schema: "dbbroken", dir: broken }), /0002_bad failed/);
    assert.deepEqual(await appliedMigrations(db, "dbbroken"), ["0001_ok"]);
    const half = await db.query<{ found: boolean }>(
      "select to_regclass('dbbroken.half') is not null as found",
    );
    assert.equal(half.rows[0]?.found, false);
    await assert.rejects(migrate(db, { schema: "dbbroken", dir: broken }), /0002_bad failed/);
  });

  test("migrate refuses a schema name that is not a plain identifier", async () => {
    await assert.rejects(
      migrate(getDb(), { schema: "bad; drop table x", dir: migrations }),
      /invalid schema name/,
    );
  });
}

describe("PGlite", () => {
  let db: Db;
  before(async () => {
    db = await embeddedDb();
  });
  dbContract(() => db);
});

describe("PostgreSQL", { skip: postgresSkip }, () => {
  let db: Db;
  let url: string;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, url, close } = await testDatabase());
  });
  after(() => close());
  dbContract(() => db);

  test("replicas migrating at once each apply every file exactly once", async () => {
    const handles = await Promise.all(
      Array.from({ length: 4 }, () => openDb({ url, maxConnections: 2 })),
    );
    try {
      const results = await Promise.all(
        handles.map((handle) => migrate(handle, { schema: "dbrace", dir: race, outbox: true })),
      );
      const applied = results.flatMap((r) => r.applied).sort();
      assert.deepEqual(applied, ["0001_init", "latchkey_outbox_1"]);
      assert.deepEqual(await appliedMigrations(db, "dbrace"), ["0001_init", "latchkey_outbox_1"]);
    } finally {
      await Promise.all(handles.map((handle) => handle.close()));
    }
  });

  test("openDb rejects an unreachable server instead of returning a broken pool", async () => {
    await assert.rejects(openDb({ url: "postgres://postgres@127.0.0.1:1/none" }));
  });
});
