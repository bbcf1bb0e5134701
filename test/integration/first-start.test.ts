import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect } from "../helpers/sockets";

// A first start that fails after generating the secrets (here EADDRINUSE: the port is taken) must not
// lock the admin out: nothing was shown, nothing is kept, and the next start generates and shows them.
// Nor does it leave behind what it created in DATA_DIR (the directories, the SQLite database): a start
// that fails before it listens leaves the data dir as it found it, and says what it removed.

describe("a first start that fails before it listens", () => {
  const regions: RegionProcess[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const region of regions) await region.stop();
    for (const dir of [...dirs, ...regions.map((r) => r.dataDir)]) await removeDir(dir);
  });

  it("shows and keeps nothing, and the next start shows an admin token that works", async () => {
    const holder = await startRegion();
    regions.push(holder);
    const port = new URL(holder.url).port;
    const dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-first-start-"));
    dirs.push(dataDir);
    const secrets = path.join(dataDir, "generated-secrets.txt");
    const fresh = { ADMIN_TOKEN: "", RACK_SECRET: "" };

    const failed = await startRegion({ dataDir, env: { ...fresh, PORT: port } }).then(
      () => "listened",
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/region exited with [1-9]\d* before listening/);
    expect(failed).toContain("EADDRINUSE");
    expect(failed).toContain("another process holds that port: stop it, or give --port / PORT");
    expect(failed).toContain("the next start makes new ones");
    // Not shown anywhere: no file, nothing on the output.
    expect(existsSync(secrets)).toBe(false);
    expect(failed).not.toMatch(/Admin token \(shown once/);
    // The data dir was there (empty) before: it is left empty, and it was said what went.
    expect(await readdir(dataDir)).toEqual([]);
    expect(failed).toMatch(/bootstream region: removed what this start had created: .*bootstream\.db.*store/);

    const region = await startRegion({ dataDir, env: fresh });
    regions.push(region);
    const text = await readFile(secrets, "utf8");
    const tokens = [...text.matchAll(/^Admin token \(shown once; keep it\): (\S+)$/gm)].map((m) => m[1]!);
    expect(tokens).toHaveLength(1);
    expect(text.match(/^Rack secret /gm)).toHaveLength(1);
    const { socket } = await connect(region.url, tokens[0]!);
    socket.close();
  });

  it("removes a data dir it created, parents too, and changes nothing in one that was in use", async () => {
    const holder = await startRegion();
    regions.push(holder);
    const port = new URL(holder.url).port;
    const parent = await mkdtemp(path.join(tmpdir(), "bootstream-first-start-"));
    dirs.push(parent);
    const dataDir = path.join(parent, "srv", "bootstream");
    const fresh = { ADMIN_TOKEN: "", RACK_SECRET: "" };

    // A bad setting stops it before it touches the disk at all.
    const badConfig = await startRegion({ dataDir, env: { ...fresh, PORT: "not-a-port" } }).then(
      () => "listened",
      (error: Error) => error.message,
    );
    expect(badConfig).toMatch(/region exited with 2 before listening:\n.*invalid PORT/);
    expect(await readdir(parent)).toEqual([]);

    const failed = await startRegion({ dataDir, env: { ...fresh, PORT: port } }).then(
      () => "listened",
      (error: Error) => error.message,
    );
    expect(failed).toContain("EADDRINUSE");
    expect(failed).toContain(`removed what this start had created: `);
    expect(failed).toContain(path.join(parent, "srv"));
    expect(failed).not.toContain("could not remove");
    expect(await readdir(parent)).toEqual([]);

    // A data dir in use: a start that fails on the port takes nothing of it.
    const region = await startRegion({ dataDir, env: fresh });
    const token = /^Admin token \(shown once; keep it\): (\S+)$/m.exec(
      await readFile(path.join(dataDir, "generated-secrets.txt"), "utf8"),
    )![1]!;
    await region.stop();
    // SQLite's own -wal and -shm come and go as it opens and closes the database: not compared.
    const listing = async () => (await readdir(dataDir)).filter((f) => !/-(wal|shm)$/.test(f)).sort();
    const before = await listing();
    expect(before).toEqual(
      expect.arrayContaining(["bootstream.db", "generated-secrets.txt", "partial", "store"]),
    );
    const again = await startRegion({ dataDir, env: { ...fresh, PORT: port } }).then(
      () => "listened",
      (error: Error) => error.message,
    );
    expect(again).toContain("EADDRINUSE");
    expect(again).not.toContain("removed what this start had created");
    expect(await listing()).toEqual(before);
    const restarted = await startRegion({ dataDir, env: fresh });
    regions.push(restarted);
    const { socket } = await connect(restarted.url, token);
    socket.close();
  });
});
