import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { createLogger } from "../../apps/server/src/log";
import type { RegionConfig } from "../../apps/server/src/config";
import { removeDir } from "../helpers/region";
import { regionConfig } from "../helpers/in-process";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

// The region in-process, so a test can reach its own SQLite connection (ALTER TABLE acts on it for
// real); everything else is real: HTTP mirrors, sockets, files.

const TOKEN = "core-faults-admin-token-0123456789abcdef";
const NOBLE = "ubuntu/noble/amd64";

function config(dataDir: string, bootSourceUrl: string): RegionConfig {
  return regionConfig(dataDir, { adminToken: TOKEN, bootSourceUrl });
}

/** Mounts a tmpfs of `size` on `dir`; false (with a loud warning) where that is not allowed, outside CI. */
function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
    return true;
  } catch (error) {
    const why = `cannot mount a tmpfs here (${String(error).split("\n")[0]}): the full-disk tests need root`;
    if (process.env.CI === "true") throw new Error(why, { cause: error });
    console.warn(`\n!!! SKIPPED: ${why}\n`);
    return false;
  }
}

type Started = { region: RegionHandle; client: BootstreamClient };

/** Waits for a condition the test cannot be told about by an event (bounded; fails saying what). */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("the region's core under faults", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  const later = (fn: () => Promise<unknown>) => cleanups.push(fn);
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
  });

  async function start(dataDir: string, sourceUrl: string): Promise<Started> {
    const region = await startRegion(config(dataDir, sourceUrl), createLogger("silent", "core-faults"));
    const client = await watch(region.url, TOKEN);
    const started = { region, client };
    later(async () => {
      client.close();
      await region.close();
    });
    return started;
  }

  async function mirror(bytesPerSecond: number): Promise<TestMirror> {
    const m = await startMirror({}, bytesPerSecond);
    later(() => m.close());
    return m;
  }

  async function tempDir(name: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), `bootstream-${name}-`));
    later(() => removeDir(dir));
    return dir;
  }

  it("ends a run that meets a database error mid-download: running:false, then recorded and no image left downloading", async () => {
    const source = await mirror(64 * 1024);
    const dataDir = await tempDir("dberror");
    const { region, client } = await start(dataDir, source.url);
    const db = region.context.db;
    // A fresh region imports the default selection (noble) at once; the database refuses every write
    // from the middle of the download on (a real SQLite error: SQLITE_READONLY).
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "downloading", 30_000, "noble downloading");
    await db.source.query("PRAGMA query_only = 1");
    later(() => db.source.query("PRAGMA query_only = 0"));

    const ended = await waitFor(client, (s) => s.import.running === false, 60_000, "the import to end");
    expect(ended.import.error).toMatch(/readonly database/);
    expect(region.context.importer.status).toBe("idle");

    // The database takes writes again: the run's end is recorded and the image says why it failed.
    await db.source.query("PRAGMA query_only = 0");
    const settled = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "failed",
      30_000,
      "noble failed",
    );
    expect(settled.images.get(NOBLE)?.error).toMatch(/readonly database/);
    const runs = (await db.source.query("SELECT finished_at, error FROM import_run ORDER BY id")) as {
      finished_at: string | null;
      error: string | null;
    }[];
    expect(runs.at(-1)?.finished_at, "the run is recorded as finished").not.toBeNull();
    expect(runs.at(-1)?.error).toMatch(/readonly database/);

    // The region carries on: the next import syncs noble.
    const answer = await client.command("import:start", {});
    expect(answer.import.running).toBe(true);
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 60_000, "noble synced");
  });

  it("keeps the admin's source when a source:update commits while an import records what it read of the old one", async () => {
    const slow = await mirror(4 * 1024);
    const fast = await mirror(Infinity);
    const dataDir = await tempDir("source-race");
    const first = await start(dataDir, slow.url);
    const db = first.region.context.db;
    const queued = () => (db as unknown as { queue: { size: number } }).queue.size;
    // A fresh region's import has written its run and is reading the slow source.
    expect(first.client.state.import.running).toBe(true);
    await until(async () => {
      const [{ n }] = (await db.source.query("SELECT count(*) AS n FROM import_run")) as [{ n: number }];
      return n > 0 && queued() === 0;
    }, "the import's run row");
    // Hold the write queue (SQLite's one writer) so that both writes wait, in this order: the
    // admin's source:update first, then the import's record of the old source.
    let release!: () => void;
    const hold = db.write(() => new Promise<void>((resolve) => (release = resolve)));
    const update = first.client.command("source:update", { url: fast.url });
    await until(async () => queued() === 2, "source:update to wait for the queue");
    slow.proxy.bytesPerSecond = Infinity;
    await until(async () => queued() === 3, "the import's read to end");
    release();
    await hold;
    expect((await update).source.url).toBe(fast.url);
    // The import goes on with what it read (it saves the default selection).
    await waitFor(first.client, (s) => s.selection.revision > 0, 60_000, "the default selection");
    expect(first.client.state.source.url).toBe(fast.url);
    expect(first.region.context.source.state().url).toBe(fast.url);
    await first.client.command("import:stop", {});
    first.client.close();
    await first.region.close();
    cleanups.length = 0;
    later(() => removeDir(dataDir));
    later(() => slow.close());
    later(() => fast.close());

    const again = await start(dataDir, slow.url);
    expect(again.client.state.source.url, "the stored source after a restart").toBe(fast.url);
  });

  it("loses nothing it acknowledged when the database's filesystem fills up (a real tmpfs), across a restart", async (ctx) => {
    const dataDir = await tempDir("dbfull");
    if (!mountTmpfs(dataDir, "16m")) return ctx.skip();
    later(async () => execFileSync("umount", ["-l", dataDir], { stdio: "pipe" }));
    const first = await start(dataDir, "http://127.0.0.1:9/unreachable/");
    const { client, region } = first;
    await waitFor(client, (s) => s.import.running === false, 30_000, "the first (failing) import");
    await client.command("settings:update", { autoImport: false });
    const victim = (await client.command("token:create", { role: "viewer", name: "victim" })).token;

    // Another process fills the filesystem the database lives on.
    const fillerPath = path.join(dataDir, "filler");
    const filler = await open(fillerPath, "w");
    try {
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (;;) await filler.write(chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      await filler.close();
    }
    const told = new Map<string, boolean>();
    const attempt = async (what: string, run: () => Promise<unknown>) =>
      told.set(
        what,
        await run().then(
          () => true,
          () => false,
        ),
      );
    let during: string | null = null;
    await attempt("bandwidth", () => client.command("settings:update", { bandwidthLimit: 5_000_000 }));
    await attempt("during", async () => {
      during = (await client.command("token:create", { role: "viewer", name: "during" })).token;
    });
    await attempt("revoke", () => client.command("token:revoke", { name: "victim" }));
    await rm(fillerPath);
    // Space is back: the writes go through (and, before the fix, vanished with the refused one's
    // transaction that stayed open on the connection).
    await client.command("token:create", { role: "viewer", name: "after" });
    if (!told.get("revoke")) await client.command("token:revoke", { name: "victim" });

    client.close();
    await region.close();
    cleanups.splice(cleanups.length - 1, 1);
    const again = await start(dataDir, "http://127.0.0.1:9/unreachable/");
    // Whatever was answered ok is there after the restart; whatever was refused is not.
    expect(again.client.state.settings.bandwidthLimit).toBe(told.get("bandwidth") ? 5_000_000 : null);
    const names = (await again.client.command("audit:list", { limit: 50 })).entries.map((e) => e.detail);
    expect(names.includes('viewer token "during"')).toBe(told.get("during"));
    expect(names.includes('viewer token "after"')).toBe(true);
    if (during) {
      const viewer = await watch(again.region.url, during);
      viewer.close();
    }
    await expect(watch(again.region.url, victim), "a revoked token never comes back").rejects.toThrow();
  });

  it('fails the image "no space left in the image store" when the store fills mid-download, and the import ends', async (ctx) => {
    const mnt = await tempDir("tmpfs");
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], { stdio: "pipe" });
    } catch (error) {
      const why = `cannot mount a tmpfs here (${String(error).split("\n")[0]}): the full image store test needs root`;
      if (process.env.CI === "true") throw new Error(why, { cause: error });
      console.warn(`\n!!! SKIPPED: ${why}\n`);
      ctx.skip();
    }
    later(async () => execFileSync("umount", ["-l", mnt], { stdio: "pipe" }));
    // The store and its partials on the small filesystem, the database beside it on the big one.
    const dataDir = await tempDir("enospc");
    await mkdir(path.join(mnt, "store"));
    await mkdir(path.join(mnt, "partial"));
    await symlink(path.join(mnt, "store"), path.join(dataDir, "store"));
    await symlink(path.join(mnt, "partial"), path.join(dataDir, "partial"));
    const source = await mirror(32 * 1024);
    const { client } = await start(dataDir, source.url);
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "downloading", 30_000, "noble downloading");

    // Another process fills the filesystem.
    const filler = await open(path.join(mnt, "filler"), "w");
    try {
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (;;) await filler.write(chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      await filler.close();
    }

    const ended = await waitFor(client, (s) => s.import.running === false, 60_000, "the import to end");
    const image = ended.images.get(NOBLE)!;
    expect(image.state).toBe("failed");
    expect(image.error).toMatch(/no space left in the image store/);
    expect(ended.import.error).toMatch(/no space left in the image store/);
  });
});
