import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataSource } from "typeorm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Database } from "../database";
import { ImageFileEntity } from "../entities";
import { Initial1764115200000 } from "./0001-initial";

const sha = (c: string) => c.repeat(64);

describe("migration 0002: image_file keyed by path", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-migrate-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps the rows a 0001 database holds, and then takes two paths of one sha256", async () => {
    // A region database as the previous release left it: only 0001, with file rows.
    const old = new DataSource({
      type: "better-sqlite3",
      database: path.join(dir, "bootstream.db"),
      migrations: [Initial1764115200000],
    });
    await old.initialize();
    await old.runMigrations({ transaction: "all" });
    await old.query(
      `INSERT INTO image_file (image_id, version, sha256, size, ftype, path) VALUES
       ('ubuntu/noble/amd64', '20250615', '${sha("a")}', 9, 'boot-kernel', 'noble/amd64/20250615/ga-24.04/generic/boot-kernel'),
       ('ubuntu/noble/amd64', '20250615', '${sha("b")}', 50, 'squashfs', 'noble/amd64/20250615/squashfs')`,
    );
    await old.destroy();

    const db = await Database.open({ dataDir: dir, databaseUrl: null });
    try {
      const kept = await db.manager.find(ImageFileEntity, { order: { path: "ASC" } });
      expect(kept.map((f) => [f.path, f.sha256[0], f.size])).toEqual([
        ["noble/amd64/20250615/ga-24.04/generic/boot-kernel", "a", 9],
        ["noble/amd64/20250615/squashfs", "b", 50],
      ]);
      await db.write((m) =>
        m.insert(ImageFileEntity, {
          imageId: "ubuntu/noble/amd64",
          version: "20250615",
          path: "noble/amd64/20250615/hwe-24.04/generic/boot-kernel",
          sha256: sha("a"),
          size: 9,
          ftype: "boot-kernel",
        }),
      );
      expect(await db.manager.count(ImageFileEntity, { where: { sha256: sha("a") } })).toBe(2);
      // One path is still one row.
      await expect(
        db.write((m) =>
          m.insert(ImageFileEntity, {
            imageId: "ubuntu/noble/amd64",
            version: "20250615",
            path: "noble/amd64/20250615/squashfs",
            sha256: sha("c"),
            size: 1,
            ftype: "squashfs",
          }),
        ),
      ).rejects.toThrow(/UNIQUE|PRIMARY/i);
    } finally {
      await db.close();
    }
  });
});
