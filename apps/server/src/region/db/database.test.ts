import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Database } from "./database";
import { Repositories } from "./repositories";

// A real SQLite file in a temp dir: the region's own Database, written through its queue.
describe("Database.write on SQLite", () => {
  let dir: string;
  let db: Database;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-db-"));
    db = await Database.open({ dataDir: dir, databaseUrl: null });
  });
  afterEach(async () => {
    await db.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("leaves no transaction open after a COMMIT and its ROLLBACK failed: later writes commit for real, across a reopen", async () => {
    // On a full filesystem COMMIT fails with SQLITE_FULL and TypeORM's ROLLBACK fails too, leaving
    // the transaction open on the one connection (TypeORM still counts it); the next writes then
    // run as savepoints inside it, are answered ok, and are gone when the connection closes. Here
    // the same state without a mount: a deferred foreign key fails the COMMIT (SQLite keeps the
    // transaction open), and a TypeORM subscriber fails the ROLLBACK once, as the full disk does.
    await db.source.query("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)");
    await db.source.query(
      "CREATE TEMP TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
    );
    let failRollback = true;
    db.source.subscribers.push({
      beforeTransactionRollback() {
        if (!failRollback) return;
        failRollback = false;
        throw new Error("rollback failed (as on a full disk)");
      },
    });
    const data = new Repositories(db);
    const seen: string[] = [];
    db.observe({ writeSucceeded: () => seen.push("ok"), writeFailed: () => seen.push("failed") });
    await expect(db.write((m) => m.query("INSERT INTO child (parent) VALUES (42)"))).rejects.toThrow(
      /FOREIGN KEY/,
    );
    expect(failRollback, "the ROLLBACK was attempted and failed").toBe(false);
    const entry = await data.write((tx) =>
      tx.audit.record({ by: "test", action: "test:after", detail: "kept" }),
    );
    expect(entry.action).toBe("test:after");
    await data.write((tx) => tx.settings.update({ bandwidthLimit: 1234 }));
    expect(seen).toEqual(["failed", "ok", "ok"]);

    await db.close();
    db = await Database.open({ dataDir: dir, databaseUrl: null });
    const again = new Repositories(db);
    expect((await again.read.audit.list(10)).entries.map((e) => e.detail)).toContain("kept");
    expect((await again.read.settings.get()).bandwidthLimit).toBe(1234);
  });

  it("runs writes one at a time, in the order asked, and a failed one does not stop the next", async () => {
    const order: string[] = [];
    const slow = db.write(async (m) => {
      order.push("a start");
      await new Promise((resolve) => setImmediate(resolve));
      await m.query("SELECT 1");
      order.push("a end");
    });
    const failing = db.write(async () => {
      order.push("b");
      throw new Error("b fails");
    });
    const last = db.write(async () => {
      order.push("c");
      return "c";
    });
    await slow;
    await expect(failing).rejects.toThrow("b fails");
    expect(await last).toBe("c");
    expect(order).toEqual(["a start", "a end", "b", "c"]);
    await db.ping();
  });
});
