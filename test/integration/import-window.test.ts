import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import type { ImportState } from "@bootstream/protocol";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;
const MINUTE = 60_000;

/** "HH:MM" in UTC of an instant. */
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
/** The first minute boundary at least `lead` ms from now. */
const boundaryAfter = (lead: number) => Math.ceil((Date.now() + lead) / MINUTE) * MINUTE;

async function partialBytes(dataDir: string): Promise<number> {
  const dir = path.join(dataDir, "partial");
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[]))
    if (name.endsWith(".partial")) total += (await stat(path.join(dir, name))).size;
  return total;
}

// Real minutes: windows are HH:MM, so this test waits for one or two minute boundaries (under 3 min).
describe("settings.importWindow", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  const imports: ImportState[] = [];

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["noble"],
      arches: ["amd64"],
      centos: [],
      versions: 1,
      sizes: { kernel: 1 * MiB, initrd: 2 * MiB, squashfs: 16 * MiB, root: 1 * MiB },
    });
    // A schedule every 2 s: the window, not the pattern, decides when scheduled imports run.
    region = await startRegion({ env: { IMPORT_SCHEDULE: "*/2 * * * * *" } });
    client = await watch(region.url, region.adminToken);
    client.subscribe((change, state) => {
      if (change === "import") imports.push(state.import);
    });
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
  });

  it("refuses a window that is not HH:MM–HH:MM in an IANA zone, changing nothing", async () => {
    for (const importWindow of [
      { start: "1:00", end: "05:00", timezone: "UTC" },
      { start: "01:00", end: "24:00", timezone: "UTC" },
      { start: "01:00", end: "01:00", timezone: "UTC" },
      { start: "01:00", end: "05:00", timezone: "Mars/Olympus" },
      { start: "01:00", end: "05:00" },
      { start: "01:00", end: "05:00", timezone: "UTC", extra: 1 },
      "01:00-05:00",
    ]) {
      await expect(client.command("settings:update", { importWindow } as never)).rejects.toMatchObject({
        code: "invalid",
      });
    }
    expect(client.state.settings.importWindow).toBeNull();
  });

  it("runs a saved selection and a manual import outside the window, and no scheduled one", async () => {
    const closed = {
      start: hhmm(Date.now() + 3 * 60 * MINUTE),
      end: hhmm(Date.now() + 4 * 60 * MINUTE),
      timezone: "UTC",
    };
    const { settings } = await client.command("settings:update", { importWindow: closed });
    expect(settings.importWindow).toEqual(closed);
    // A source change imports at once (manual); then the save imports (selection). Both run now.
    const from = imports.length;
    await client.command("source:update", { url: mirror.url });
    await waitFor(
      client,
      () => imports.slice(from).some((i) => !i.running && i.trigger === "manual"),
      60_000,
      "the source's import",
    );
    const saved = imports.length;
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    const first = await waitFor(
      client,
      (s) =>
        s.images.get(NOBLE)?.state === "synced" &&
        imports.slice(saved).some((i) => !i.running && i.trigger === "selection"),
      60_000,
      "synced",
    );
    await mirror.addVersion();
    const { import: started } = await client.command("import:start", {});
    expect(started).toMatchObject({ running: true, trigger: "manual" });
    const second = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.version !== first.images.get(NOBLE)!.version && !s.import.running,
      60_000,
      "the manual import's version",
    );
    expect(second.images.get(NOBLE)).toMatchObject({ state: "synced", next: null });
    // Several 2-second ticks passed meanwhile: none started an import.
    expect(imports.slice(from).map((i) => i.trigger)).not.toContain("schedule");
  }, 150_000);

  it("pauses a scheduled import when its window closes, keeping its partial files, and resumes it when the next one opens", async () => {
    await mirror.addVersion();
    mirror.proxy.bytesPerSecond = 150_000;
    // Open now, closing at a minute boundary at least 20 s away.
    const closesAt = boundaryAfter(20_000);
    const from = imports.length;
    await client.command("settings:update", {
      importWindow: { start: hhmm(Date.now() - MINUTE), end: hhmm(closesAt), timezone: "UTC" },
    });
    const downloading = await waitFor(
      client,
      (s) =>
        s.import.running &&
        s.import.trigger === "schedule" &&
        (s.images.get(NOBLE)?.next?.bytesDone ?? 0) > 0,
      30_000,
      "a scheduled import downloading",
    );
    const version = downloading.images.get(NOBLE)!.next!.version;
    const total = downloading.images.get(NOBLE)!.next!.bytesTotal;

    const paused = await waitFor(
      client,
      (s) => !s.import.running && /paused/.test(s.import.error ?? ""),
      100_000,
      "the pause",
    );
    expect(Date.now()).toBeGreaterThanOrEqual(closesAt);
    expect(paused.import).toMatchObject({
      trigger: "schedule",
      error: expect.stringMatching(/import window .* closed/),
    });
    // Still served, the new version queued again; what was fetched stays on disk.
    expect(paused.images.get(NOBLE)).toMatchObject({ state: "synced", next: { version, state: "queued" } });
    expect(await partialBytes(region.dataDir)).toBeGreaterThan(0);

    // The next window opens at the next minute boundary; nothing scheduled runs before it.
    mirror.proxy.bytesPerSecond = Infinity;
    const opensAt = boundaryAfter(5_000);
    const pausedAt = imports.length;
    await client.command("settings:update", {
      importWindow: { start: hhmm(opensAt), end: hhmm(opensAt + 30 * MINUTE), timezone: "UTC" },
    });
    const before = mirror.proxy.bytesToClient;
    const resumed = await waitFor(client, (s) => s.import.running, 90_000, "the resumed import");
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt);
    expect(resumed.import.trigger).toBe("schedule");
    expect(imports.slice(from, pausedAt).filter((i) => i.running)).toHaveLength(1);
    const done = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.version === version && !s.import.running,
      60_000,
      "the new version served",
    );
    expect(done.images.get(NOBLE)).toMatchObject({ state: "synced", next: null, error: null });
    // Resumed from the partial bytes: it fetched less than the whole version again.
    expect(mirror.proxy.bytesToClient - before).toBeLessThan(total - 2 * MiB);
  }, 240_000);
});
