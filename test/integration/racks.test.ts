import { mkdir, readFile, readdir, readlink, realpath, rm, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { ThrottleProxy } from "../../apps/server/src/demo/throttle-proxy";
import { TEST_RACK_SECRET, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { sha256File } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";
const MiB = 1024 * 1024;

/** Every file a rack publishes under current/, as { relative path → sha256 of its bytes }. */
async function published(rack: RackProcess): Promise<Map<string, string>> {
  // A publish may retire the snapshot we are walking (the agent keeps one previous set): walk again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await walkPublished(rack);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= 5) throw error;
    }
  }
}

async function walkPublished(rack: RackProcess): Promise<Map<string, string>> {
  // Resolve `current` once, as a reader that opened the set would: it may switch while we walk.
  const root = path.join(
    await realpath(path.join(rack.dataDir, "current")).catch(() => path.join(rack.dataDir, "current")),
    "images",
  );
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else files.set(path.relative(root, full), await sha256File(full));
    }
  };
  await walk(root);
  return files;
}

function rawGet(url: string, pathname: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request({ host: target.hostname, port: target.port, path: pathname, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("rack controllers", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  let slowLink: ThrottleProxy;
  const racks: RackProcess[] = [];

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["jammy", "noble"],
      arches: ["amd64"],
      sizes: { squashfs: 6 * MiB },
    });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    client = await watch(region.url, region.adminToken);
    // rack-2 reaches the region over a slow link, so it can be killed mid-file.
    slowLink = await ThrottleProxy.start(region.url + "/", Infinity);
  });
  afterAll(async () => {
    client?.close();
    for (const rack of racks) {
      await rack.kill();
      await removeDir(rack.dataDir);
    }
    await slowLink?.close();
    await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
  });

  it("brings the selected image to rack-synced on two racks, each holding every file", async () => {
    racks.push(await startRack({ regionUrl: region.url, name: "rack-1" }));
    racks.push(await startRack({ regionUrl: slowLink.url.replace(/\/$/, ""), name: "rack-2" }));
    // Both racks online and holding it (rack-1 alone can make it rack-synced before rack-2 connects).
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "rack-synced" && s.images.get(NOBLE)!.racks.total === 2,
      40_000,
      "rack-synced on both racks",
    );
    expect(state.images.get(NOBLE)!.racks).toEqual({
      synced: 2,
      total: 2,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
    });
    expect(state.racks.map((r) => [r.name, r.online, r.imagesSynced, r.imagesTotal])).toEqual([
      ["rack-1", true, 1, 1],
      ["rack-2", true, 1, 1],
    ]);
    const { entries } = await client.command("audit:list", {});
    expect(entries.length).toBeGreaterThan(0);
    for (const rack of racks) {
      const files = await published(rack);
      expect(files.size).toBeGreaterThanOrEqual(4);
      // Every published file is named by its image and version, and its bytes hash to a stored sha.
      for (const [name, sha] of files) {
        expect(name.startsWith(`ubuntu/noble/amd64/${state.images.get(NOBLE)!.version}/`)).toBe(true);
        await expect(stat(path.join(region.dataDir, "store", sha.slice(0, 2), sha))).resolves.toBeTruthy();
      }
    }
  });

  it("refuses a wrong rack secret, and logs it on both sides", async () => {
    const intruder = await startRack({ regionUrl: region.url, name: "intruder", secret: "wrong" });
    racks.push(intruder);
    await intruder.waitForLog("the region refused the rack secret");
    expect(region.output()).toContain("rack refused: wrong rack secret");
    expect(client.state.racks.map((r) => r.name)).not.toContain("intruder");
    await intruder.kill();
  });

  it("serves /files only to racks, only by sha256", async () => {
    const sha = [...(await published(racks[0]!)).values()][0]!;
    expect(await rawGet(region.url, `/files/${sha}`)).toBe(401);
    expect(await rawGet(region.url, `/files/${sha}`, { authorization: "Bearer wrong" })).toBe(401);
    expect(await rawGet(region.url, `/files/${sha}`, { authorization: `Bearer ${TEST_RACK_SECRET}` })).toBe(
      200,
    );
    expect(
      await rawGet(region.url, `/files/${sha}`, {
        authorization: `Bearer ${TEST_RACK_SECRET}`,
        range: "bytes=10-19",
      }),
    ).toBe(206);
    expect(await rawGet(region.url, "/files/not-hex", { authorization: `Bearer ${TEST_RACK_SECRET}` })).toBe(
      400,
    );
    expect(
      await rawGet(region.url, `/files/${sha.toUpperCase()}`, {
        authorization: `Bearer ${TEST_RACK_SECRET}`,
      }),
    ).toBe(400);
    expect(
      await rawGet(region.url, "/files/../bootstream.db", { authorization: `Bearer ${TEST_RACK_SECRET}` }),
    ).toBe(404);
    // A symlink planted in the store is never followed (O_NOFOLLOW), nor is anything but a regular file served.
    const planted = "c".repeat(64);
    await mkdir(path.join(region.dataDir, "store", "cc"), { recursive: true });
    await symlink(
      path.join(region.dataDir, "bootstream.db"),
      path.join(region.dataDir, "store", "cc", planted),
    );
    expect(
      await rawGet(region.url, `/files/${planted}`, { authorization: `Bearer ${TEST_RACK_SECRET}` }),
    ).toBe(404);
    const directory = "d".repeat(64);
    await mkdir(path.join(region.dataDir, "store", "dd", directory), { recursive: true });
    expect(
      await rawGet(region.url, `/files/${directory}`, { authorization: `Bearer ${TEST_RACK_SECRET}` }),
    ).toBe(404);
    await rm(path.join(region.dataDir, "store", "cc"), { recursive: true });
    await rm(path.join(region.dataDir, "store", "dd"), { recursive: true });
    expect(
      await rawGet(region.url, "/files/..%2fbootstream.db", { authorization: `Bearer ${TEST_RACK_SECRET}` }),
    ).toBe(400);
    expect(
      await rawGet(region.url, `/files/${"0".repeat(64)}`, { authorization: `Bearer ${TEST_RACK_SECRET}` }),
    ).toBe(404);
  });

  it("resumes a rack killed with -9 mid-file when it starts again", async () => {
    const rack2 = racks[1]!;
    slowLink.bytesPerSecond = 2 * MiB;
    slowLink.bytesToClient = 0;
    const seen = rack2.logs().length;
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    });
    await waitFor(
      client,
      (s) =>
        s.images.get(JAMMY)?.state === "rack-synced" ||
        (s.images.get(JAMMY)?.state === "synced" && s.images.get(JAMMY)!.racks.synced >= 1),
      30_000,
      "jammy on rack-1",
    );
    await rack2.waitForLog("sync started", 20_000, seen);
    // While rack-2 pulls it, jammy says a rack is syncing it, and rack-2 shows how far it got.
    const pulling = await waitFor(
      client,
      (s) =>
        (s.images.get(JAMMY)?.racks.syncing ?? 0) >= 1 &&
        (s.racks.find((r) => r.name === "rack-2")?.progress?.bytesDone ?? 0) > 0,
      20_000,
      "rack-2 pulling jammy",
    );
    expect(pulling.racks.find((r) => r.name === "rack-2")).toMatchObject({ syncing: true });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await rack2.kill();
    const partials = await readdir(path.join(rack2.dataDir, "partial")).catch(() => [] as string[]);
    expect(partials.some((name) => name.endsWith(".partial"))).toBe(true);
    await waitFor(
      client,
      (s) => s.racks.find((r) => r.name === "rack-2")?.online === false,
      20_000,
      "rack-2 offline",
    );
    // While rack-2 is away it does not hold jammy back.
    await waitFor(
      client,
      (s) => s.images.get(JAMMY)?.state === "rack-synced",
      10_000,
      "rack-synced without the offline rack",
    );
    const restarted = await startRack({
      regionUrl: slowLink.url.replace(/\/$/, ""),
      name: "rack-2",
      dataDir: rack2.dataDir,
    });
    racks[1] = restarted;
    const state = await waitFor(
      client,
      (s) => s.images.get(JAMMY)?.state === "rack-synced" && s.images.get(JAMMY)!.racks.total === 2,
      40_000,
      "both racks again",
    );
    expect(state.images.get(NOBLE)!.racks).toEqual({
      synced: 2,
      total: 2,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
    });
    const resumed = restarted
      .logs()
      .filter((l) => l.msg === "file downloaded" && (l.resumedFrom as number) > 0);
    expect(resumed.length).toBeGreaterThan(0);
    const jammy = state.images.get(JAMMY)!;
    expect(slowLink.bytesToClient).toBeLessThan(1.2 * jammy.bytesTotal + 2 * MiB);
    slowLink.bytesPerSecond = Infinity;
  });

  it("switches the racks to a new upstream version in one step", async () => {
    const before = client.state.images.get(NOBLE)!.version;
    const links = await Promise.all(racks.slice(0, 2).map((r) => readlink(path.join(r.dataDir, "current"))));
    await mirror.addVersion();
    await client.command("import:start", {});
    const state = await waitFor(
      client,
      (s) =>
        s.images.get(NOBLE)?.version !== before &&
        s.images.get(NOBLE)?.state === "rack-synced" &&
        s.images.get(JAMMY)?.state === "rack-synced",
      40_000,
      "new version on the racks",
    );
    const version = state.images.get(NOBLE)!.version!;
    for (const [i, rack] of racks.slice(0, 2).entries()) {
      expect(await readlink(path.join(rack.dataDir, "current"))).not.toBe(links[i]);
      const names = [...(await published(rack)).keys()];
      expect(
        names
          .filter((n) => n.startsWith("ubuntu/noble/"))
          .every((n) => n.startsWith(`ubuntu/noble/amd64/${version}/`)),
      ).toBe(true);
      const manifest = JSON.parse(
        await readFile(path.join(rack.dataDir, "current", "manifest.json"), "utf8"),
      ) as { images: { id: string; version: string }[] };
      expect(manifest.images.find((i) => i.id === NOBLE)?.version).toBe(version);
    }
  });

  it("drops a deselected image from the racks at their next sync", async () => {
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    for (const rack of racks.slice(0, 2)) {
      const deadline = Date.now() + 20_000;
      let names = [...(await published(rack)).keys()];
      while (names.some((n) => n.startsWith("ubuntu/jammy/")) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        names = [...(await published(rack)).keys()];
      }
      expect(names.some((n) => n.startsWith("ubuntu/jammy/"))).toBe(false);
      expect(names.some((n) => n.startsWith("ubuntu/noble/"))).toBe(true);
    }
  });

  it("starts again after a crash while racks were online, and the racks come back", async () => {
    client.close();
    await region.kill();
    region = await startRegion({ dataDir: region.dataDir, env: { BOOT_SOURCE_URL: mirror.url } });
    expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    // The restarted region listens on a new port; rack-1 was pointed at the old one, so start it again.
    await racks[0]!.kill();
    racks[0] = await startRack({ regionUrl: region.url, name: "rack-1", dataDir: racks[0]!.dataDir });
    client = await watch(region.url, region.adminToken);
    await waitFor(
      client,
      (s) => s.racks.find((r) => r.name === "rack-1")?.online === true,
      20_000,
      "rack-1 back",
    );
    await waitFor(client, (s) => s.images.get(NOBLE)?.racks.synced === 1, 20_000, "rack-1 counted");
  });

  it("shows a rack that dies offline, and forgets it on rack:remove", async () => {
    await expect(client.command("rack:remove", { name: "rack-1" })).rejects.toMatchObject({
      code: "conflict",
    });
    await racks[0]!.kill();
    await waitFor(
      client,
      (s) => s.racks.find((r) => r.name === "rack-1")?.online === false,
      20_000,
      "rack-1 offline",
    );
    await client.command("rack:remove", { name: "rack-1" });
    await waitFor(client, (s) => !s.racks.some((r) => r.name === "rack-1"), 5_000, "rack-1 forgotten");
    expect(client.state.images.get(NOBLE)!.racks.total).toBe(1);
  });
});
