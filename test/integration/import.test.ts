import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { imageShas, startMirror, type TestMirror } from "../helpers/mirror";
import { recordStates, waitFor, watch } from "../helpers/watch";
import { corruptStoreFiles, storeFiles } from "../helpers/store";

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";

describe("region import from a local mirror", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["jammy", "noble"],
      arches: ["amd64", "arm64"],
      centos: ["centos70"],
    });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    client = await watch(region.url, region.adminToken);
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
  });

  it("selects the newest LTS for amd64 on a fresh data dir and imports it without anyone acting", async () => {
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced",
      30_000,
      "default image synced",
    );
    expect(state.selection.items).toEqual([{ os: "ubuntu", release: "noble", arches: ["amd64"] }]);
    expect(state.selection.revision).toBe(1);
    const image = state.images.get(NOBLE)!;
    expect(image).toMatchObject({ title: "24.04 LTS", version: mirror.summary.versions.at(-1), error: null });
    expect(image.bytesDone).toBe(image.bytesTotal);
    expect(image.bytesTotal).toBeGreaterThan(0);
    expect(await corruptStoreFiles(region.dataDir)).toEqual([]);
  });

  it("offers the catalogue with other images", async () => {
    const { catalogue } = await client.command("catalogue:get", {});
    expect(catalogue.ubuntu.releases.map((r) => r.release)).toEqual(["noble", "jammy"]);
    expect(catalogue.ubuntu.arches).toEqual(["amd64", "arm64"]);
    expect(catalogue.other.map((o) => `${o.os}/${o.release}`)).toEqual(["centos/centos70"]);
  });

  it("saving a selection queues the new images at once, then downloads and syncs them", async () => {
    const states = recordStates(client, JAMMY);
    const { selection } = await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "centos", release: "centos70", arches: ["amd64"] },
      ],
    });
    expect(selection.revision).toBe(2);
    // The save's own events arrive before its ack: the image is already there, queued.
    expect(client.state.images.get(JAMMY)?.state).toBe("queued");
    const state = await waitFor(
      client,
      (s) =>
        ["synced", "failed"].includes(s.images.get("centos/centos70/amd64")?.state ?? "") &&
        s.images.get(JAMMY)?.state === "synced" &&
        !s.import.running,
      30_000,
      "three images synced",
    );
    expect(states[0]).toBe("queued");
    expect(states.at(-1)).toBe("synced");
    expect(state.images.get("centos/centos70/amd64")).toMatchObject({ state: "synced", error: null });
    expect(state.import).toMatchObject({ running: false, trigger: "selection", error: null });
    // Every file each image needs is in the store, and every stored file is what its name says.
    expect(await corruptStoreFiles(region.dataDir)).toEqual([]);
    expect((await storeFiles(region.dataDir)).size).toBeGreaterThanOrEqual(6);
  });

  it("refuses a save from a stale revision with conflict and the current selection, changing nothing", async () => {
    const before = client.state.selection;
    await expect(
      client.command("selection:save", { revision: before.revision - 1, items: [] }),
    ).rejects.toMatchObject({
      code: "conflict",
      extra: { selection: before },
    });
    expect((await client.command("state:get", {})).snapshot.selection).toEqual(before);
  });

  it("refuses a selection the source does not offer", async () => {
    await expect(
      client.command("selection:save", {
        revision: client.state.selection.revision,
        items: [{ os: "ubuntu", release: "focal", arches: ["amd64"] }],
      }),
    ).rejects.toMatchObject({ code: "invalid", message: expect.stringContaining("ubuntu/focal") });
  });

  it("removes a deselected image at once and its files once nothing uses them", async () => {
    const jammyFiles = new Set((await storeFiles(region.dataDir)).keys());
    const removed: string[] = [];
    client.socket!.on("image:removed", ({ id }) => removed.push(id));
    const previousImport = client.state.import.startedAt;
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    // Gone before the save's ack, without waiting for the import.
    expect(removed.sort()).toEqual(["centos/centos70/amd64", JAMMY]);
    await waitFor(
      client,
      (s) => !s.import.running && s.import.startedAt !== previousImport && s.import.finishedAt !== null,
      20_000,
      "import after deselect",
    );
    const left = new Set((await storeFiles(region.dataDir)).keys());
    expect(left.size).toBeLessThan(jammyFiles.size);
    expect([...client.state.images.keys()]).toEqual([NOBLE]);
  });

  it("switches to a new upstream version in one step and drops the old version's files", async () => {
    const oldVersion = client.state.images.get(NOBLE)!.version;
    const oldFiles = new Set((await storeFiles(region.dataDir)).keys());
    await mirror.addVersion();
    const seen: string[] = [];
    client.subscribe((_c, s) => {
      const image = s.images.get(NOBLE);
      if (image) seen.push(`${image.state}@${image.version}`);
    });
    await client.command("import:start", {});
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.version !== oldVersion && !s.import.running,
      20_000,
      "new version",
    );
    expect(state.images.get(NOBLE)).toMatchObject({
      state: "synced",
      version: mirror.summary.versions.length ? expect.any(String) : null,
    });
    // The image never stopped being synced while the new version came in beside it.
    expect(seen.every((s) => s.startsWith("synced@"))).toBe(true);
    const now = new Set((await storeFiles(region.dataDir)).keys());
    expect([...now].some((sha) => !oldFiles.has(sha))).toBe(true);
    // The squashfs and kernels of the old version are gone; nothing holds them.
    expect([...oldFiles].filter((sha) => now.has(sha))).toEqual([]);
    expect(await corruptStoreFiles(region.dataDir)).toEqual([]);
  });

  it("records every change in the audit log with who made it", async () => {
    const { entries } = await client.command("audit:list", { limit: 50 });
    const actions = entries.map((e) => `${e.by}:${e.action}`);
    expect(actions).toContain("system:selection:save");
    expect(actions).toContain("admin:selection:save");
    expect(actions).toContain("admin:import:start");
  });
});

describe("stopping, restarting and the schedule", () => {
  let mirror: TestMirror;
  const regions: RegionProcess[] = [];
  const clients: BootstreamClient[] = [];
  /** The client of the region start() started last. */
  let client: BootstreamClient;

  /** A region on the mirror (`env` on top), stopped and removed after the file, and a client watching it. */
  async function start(options: { dataDir?: string; env?: Record<string, string> } = {}) {
    const region = await startRegion({
      dataDir: options.dataDir,
      env: { BOOT_SOURCE_URL: mirror.url, ...options.env },
    });
    regions.push(region);
    client = await watch(region.url, region.adminToken);
    clients.push(client);
    return region;
  }

  beforeAll(async () => {
    // 4 MiB squashfs at 2 MiB/s: an import lasts long enough to stop it or kill the region mid-file.
    mirror = await startMirror(
      { releases: ["noble"], arches: ["amd64"], sizes: { squashfs: 4 * 1024 * 1024 } },
      2 * 1024 * 1024,
    );
  });
  afterEach(() => {
    for (const each of clients.splice(0)) each.close();
  });
  afterAll(async () => {
    for (const region of regions) {
      await region.stop();
      await removeDir(region.dataDir);
    }
    await mirror?.close();
  });

  it("stops an import: unfinished images go back to queued and the next import resumes the partial files", async () => {
    const region = await start();
    await waitFor(
      client,
      (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 512 * 1024,
      20_000,
      "download under way",
    );
    const before = mirror.proxy.bytesToClient;
    const { import: stopped } = await client.command("import:stop", {});
    expect(stopped).toMatchObject({ running: false, error: "stopped by admin" });
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "queued",
      5_000,
      "queued after stop",
    );
    expect(state.images.get(NOBLE)!.error).toBeNull();
    await client.command("import:start", {});
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "synced after resume");
    // Resumed, not restarted: the whole import fetched little more than the image's size.
    const total = client.state.images.get(NOBLE)!.bytesTotal;
    expect(mirror.proxy.bytesToClient).toBeLessThan(before + total);
    expect(await corruptStoreFiles(region.dataDir)).toEqual([]);
  });

  it("resumes an import after kill -9, fetching under 1.2 × the image's size in total", async () => {
    mirror.proxy.bytesToClient = 0;
    const first = await start();
    await waitFor(
      client,
      (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 2 * 1024 * 1024,
      20_000,
      "half the download",
    );
    client.close();
    await first.kill();
    const second = await start({ dataDir: first.dataDir });
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced",
      30_000,
      "synced after crash",
    );
    expect(mirror.proxy.bytesToClient).toBeLessThan(1.2 * state.images.get(NOBLE)!.bytesTotal);
    expect(await corruptStoreFiles(second.dataDir)).toEqual([]);
    const { entries } = await client.command("audit:list", {});
    expect(entries.length).toBeGreaterThan(0);
  });

  it("shows the last import's outcome after kill -9 and a restart, not 'no import has run yet'", async () => {
    const first = await start();
    const done = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running && s.import.finishedAt !== null,
      30_000,
      "the first import",
    );
    const last = done.import;
    client.close();
    await first.kill();
    await start({ dataDir: first.dataDir });
    await waitFor(
      client,
      (s) => s.import.finishedAt === last.finishedAt,
      10_000,
      "the last import's outcome after the restart",
    );
    expect(client.state.import).toEqual(last);
  });

  it("sets syncedAt when an import syncs the image, and keeps it across a restart and a later import", async () => {
    const first = await start();
    const done = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running && s.import.finishedAt !== null,
      30_000,
      "the first import",
    );
    const image = done.images.get(NOBLE)!;
    const { startedAt, finishedAt } = done.import;
    // Set by this import: when the version switched in, between the run's start and its end.
    expect(image.syncedAt).not.toBeNull();
    expect(Date.parse(image.syncedAt!)).toBeGreaterThanOrEqual(Date.parse(startedAt!));
    expect(Date.parse(image.syncedAt!)).toBeLessThanOrEqual(Date.parse(finishedAt!));
    client.close();
    expect(await first.stop()).toBe(0);

    await start({ dataDir: first.dataDir });
    const restarted = await waitFor(
      client,
      (s) => s.images.has(NOBLE),
      10_000,
      "the snapshot after the restart",
    );
    expect(restarted.images.get(NOBLE)).toMatchObject({ version: image.version, syncedAt: image.syncedAt });
    // An import that finds the version up to date leaves it as it was.
    await client.command("import:start", {});
    const again = await waitFor(
      client,
      (s) => !s.import.running && s.import.finishedAt !== null && s.import.finishedAt !== finishedAt,
      30_000,
      "an import after the restart",
    );
    expect(again.import.error).toBeNull();
    expect(again.images.get(NOBLE)).toMatchObject({
      state: "synced",
      version: image.version,
      syncedAt: image.syncedAt,
    });
  });

  it("resumes an import interrupted by a graceful stop (SIGTERM) when the region starts again", async () => {
    const first = await start();
    await waitFor(
      client,
      (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 512 * 1024,
      20_000,
      "download under way",
    );
    client.close();
    expect(await first.stop()).toBe(0);
    const second = await start({ dataDir: first.dataDir });
    // Nobody asks: the interrupted import resumes by itself.
    await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced",
      30_000,
      "synced after a graceful restart",
    );
    expect(await corruptStoreFiles(second.dataDir)).toEqual([]);
  });

  it("answers a stop as soon as the running import stopped, while the import a racing save queued still downloads", async () => {
    await start();
    await waitFor(
      client,
      (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 256 * 1024,
      20_000,
      "download under way",
    );
    const { revision, items } = client.state.selection;
    // Sent in this order on one socket: the save lands while the stop winds the import down.
    const stop = client.command("import:stop", {});
    const save = client.command("selection:save", { revision, items });
    const { import: stopped } = await stop;
    expect(stopped).toMatchObject({ running: false, error: "stopped by admin" });
    await save;
    // The import the save queued is under way (or about to be), not finished.
    expect(client.state.images.get(NOBLE)?.state).not.toBe("synced");
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running,
      40_000,
      "the queued import synced the image",
    );
    expect(state.import.error).toBeNull();
  });

  it("never syncs an image deselected and selected again mid-download without all its files", async () => {
    const region = await start();
    await waitFor(
      client,
      (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 256 * 1024,
      20_000,
      "download under way",
    );
    const items = client.state.selection.items;
    await client.command("selection:save", { revision: client.state.selection.revision, items: [] });
    await client.command("selection:save", { revision: client.state.selection.revision, items });
    const wanted = await imageShas(mirror, "noble", "amd64");
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running,
      40_000,
      "synced again",
    );
    // Whenever it says synced, every file of the version is in the store.
    const stored = new Set((await storeFiles(region.dataDir)).keys());
    expect([...wanted].filter((sha) => !stored.has(sha))).toEqual([]);
    expect(state.images.get(NOBLE)!.bytesDone).toBe(state.images.get(NOBLE)!.bytesTotal);
  });

  it("keeps the auto-import toggle across a restart and imports on the schedule only while it is on", async () => {
    const region = await start({ env: { IMPORT_SCHEDULE: "*/1 * * * * *" } });
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "first import");
    await client.command("settings:update", { autoImport: false });
    client.close();
    expect(await region.stop()).toBe(0);
    await start({ dataDir: region.dataDir, env: { IMPORT_SCHEDULE: "*/1 * * * * *" } });
    expect(client.state.settings.autoImport).toBe(false);
    const started: string[] = [];
    client.subscribe((change, s) => {
      if (change === "import" && s.import.running) started.push(s.import.trigger ?? "");
    });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(started).toEqual([]);
    await client.command("settings:update", { autoImport: true });
    await waitFor(client, () => started.includes("schedule"), 5_000, "a scheduled import");
  });
});
