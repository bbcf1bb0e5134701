import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { createLogger } from "../log";
import {
  DataDirInUse,
  LOCK_FILE,
  LOCK_STALE_MS,
  lockDataDir,
  noteNewPaths,
  prepareDataDir,
} from "./data-dir";

const log = createLogger("silent", "data-dir-test");

/** A temp dir of this file's, removed after all its tests. */
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
const scratch = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "bootstream-data-dir-"));
  dirs.push(dir);
  return dir;
};

describe("noteNewPaths (what a failed first start takes back)", () => {
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

describe("lockDataDir (one region per data dir)", () => {
  const holder = (patch: Record<string, unknown>) =>
    JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), startedAt: "2026-12-04T00:00:00Z", ...patch });
  const ago = async (file: string, ms: number) => {
    const then = new Date(Date.now() - ms);
    await utimes(file, then, then);
  };

  it.each<[string, Record<string, unknown>, number, boolean]>([
    ["a process gone on this host: taken over at once", {}, 0, true],
    ["another host's, touched just now: refused", { host: "elsewhere" }, 0, false],
    [
      "another host's, untouched for longer than the stale bound: taken over",
      { host: "elsewhere" },
      LOCK_STALE_MS + 5_000,
      true,
    ],
    ["this very process's (a container's pid 1 again): taken over", { pid: process.pid }, 0, true],
    [
      "a live process on this host that is no bootstream (a reused pid): taken over",
      { pid: "sleeper" },
      0,
      true,
    ],
  ])("%s", async (_name, patch, ageMs, taken) => {
    const dir = await scratch();
    const file = path.join(dir, LOCK_FILE);
    // A live process of another program, holding the pid the lock names.
    const sleeper = patch.pid === "sleeper" ? spawn("sleep", ["60"]) : null;
    if (sleeper) patch = { ...patch, pid: sleeper.pid };
    onTestFinished(() => void sleeper?.kill());
    await writeFile(file, holder(patch));
    await ago(file, ageMs);
    if (!taken) {
      await expect(lockDataDir(dir)).rejects.toThrow(DataDirInUse);
      expect(await readFile(file, "utf8")).toBe(holder(patch));
      return;
    }
    const release = await lockDataDir(dir);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    await release();
    await expect(readFile(file, "utf8")).rejects.toThrow();
  });

  it("releases only its own lock: one another region took since is left alone", async () => {
    const dir = await scratch();
    const release = await lockDataDir(dir);
    const file = path.join(dir, LOCK_FILE);
    await writeFile(file, holder({ host: "elsewhere" }));
    await release();
    expect(await readFile(file, "utf8")).toBe(holder({ host: "elsewhere" }));
  });
});
