import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../log";
import { noteNewPaths, prepareDataDir } from "./data-dir";

const log = createLogger("silent", "data-dir-test");

describe("noteNewPaths (what a failed first start takes back)", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const scratch = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bootstream-data-dir-"));
    dirs.push(dir);
    return dir;
  };

  it("removes the directories and SQLite file it created, parents too, and nothing that was there", async () => {
    const parent = await scratch();
    await writeFile(path.join(parent, "keep.txt"), "mine");
    const dataDir = path.join(parent, "a", "b");
    const fresh = await noteNewPaths(dataDir, true);
    await prepareDataDir(dataDir, true, log);
    await mkdir(path.join(dataDir, "store"));
    await mkdir(path.join(dataDir, "partial"));
    const { removed, kept } = await fresh.undo();
    expect(kept).toEqual([]);
    expect(removed).toEqual([
      path.join(dataDir, "bootstream.db"),
      path.join(dataDir, "store"),
      path.join(dataDir, "partial"),
      dataDir,
      path.join(parent, "a"),
    ]);
    expect(await readdir(parent)).toEqual(["keep.txt"]);
  });

  it("keeps a directory it created that something else wrote into, and says so", async () => {
    const dataDir = await scratch();
    const fresh = await noteNewPaths(dataDir, false);
    await mkdir(path.join(dataDir, "store", "ab"), { recursive: true });
    await mkdir(path.join(dataDir, "partial"));
    const { removed, kept } = await fresh.undo();
    expect(removed).toEqual([path.join(dataDir, "partial")]);
    expect(kept).toEqual([path.join(dataDir, "store")]);
    expect(await readdir(path.join(dataDir, "store"))).toEqual(["ab"]);
  });

  it("takes nothing of a data dir that was complete before", async () => {
    const dataDir = await scratch();
    await prepareDataDir(dataDir, true, log);
    await mkdir(path.join(dataDir, "store"));
    await mkdir(path.join(dataDir, "partial"));
    const fresh = await noteNewPaths(dataDir, true);
    expect(await fresh.undo()).toEqual({ removed: [], kept: [] });
    expect((await readdir(dataDir)).sort()).toEqual(["bootstream.db", "partial", "store"]);
  });
});
