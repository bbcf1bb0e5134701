import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import type { ImportState } from "@bootstream/protocol";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";
const MiB = 1024 * 1024;
const MINUTE = 60_000;
/** Schedules that never fire on their own: only the persisted wait can start a scheduled import. */
const NEVER = "59 59 23 31 12 *";

// The region's import windows follow a test clock (BOOTSTREAM_TEST_CLOCK, test-only) that runs 60
// times as fast from ANCHOR: one window minute a real second, so edges are crossed in seconds. The
// same pure function of the real clock as the region's (apps/server/src/region/clock.ts).
const ANCHOR = Date.now();
const RATE = 60;
const TEST_CLOCK = `${ANCHOR}x${RATE}`;
const regionNow = () => ANCHOR + (Date.now() - ANCHOR) * RATE;

/** "HH:MM" in UTC of an instant of the region's clock. */
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
/** The first minute boundary of the region's clock at least `lead` ms (its time) from its now. */
const boundaryAfter = (lead: number) => Math.ceil((regionNow() + lead) / MINUTE) * MINUTE;

/** Waits for a line the region logs (bounded). */
async function logged(region: RegionProcess, pattern: RegExp, what: string, from = 0): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!pattern.test(region.output().slice(from))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function partialBytes(dataDir: string): Promise<number> {
  const dir = path.join(dataDir, "partial");
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[]))
    if (name.endsWith(".partial")) total += (await stat(path.join(dir, name))).size;
  return total;
}

describe("settings.importWindow", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  const imports: ImportState[] = [];

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["noble", "jammy"],
      arches: ["amd64"],
      centos: [],
      versions: 1,
      sizes: { kernel: 1 * MiB, initrd: 2 * MiB, squashfs: 16 * MiB, root: 1 * MiB },
    });
    // A schedule every 2 s: the window, not the pattern, decides when scheduled imports run.
    region = await startRegion({
      env: { IMPORT_SCHEDULE: "*/2 * * * * *", BOOTSTREAM_TEST_CLOCK: TEST_CLOCK },
    });
    await connect();
  });
  async function connect(): Promise<void> {
    client = await watch(region.url, region.adminToken);
    client.subscribe((change, state) => {
      if (change === "import") imports.push(state.import);
    });
  }
  /**
   * On a new version served slowly, opens the window around now and waits for the scheduled import
   * it starts to have fetched more than `bytes` of noble; `from` counts the imports before it.
   */
  async function scheduledImportUnderWay(bytes: number, timeoutMs: number) {
    await mirror.addVersion();
    mirror.proxy.bytesPerSecond = 300_000;
    const from = imports.length;
    await setWindowEnd(regionNow() + 600 * MINUTE);
    const downloading = await waitFor(
      client,
      (s) =>
        s.import.running &&
        s.import.trigger === "schedule" &&
        (s.images.get(NOBLE)?.next?.bytesDone ?? 0) > bytes,
      timeoutMs,
      "a scheduled import downloading",
    );
    return { from, next: downloading.images.get(NOBLE)!.next! };
  }
  /** A window that opened an hour ago (region time) and ends at `end`. */
  async function setWindowEnd(end: number): Promise<void> {
    await client.command("settings:update", {
      importWindow: { start: hhmm(regionNow() - 60 * MINUTE), end: hhmm(end), timezone: "UTC" },
    });
  }
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
    // A zone typed in another case is kept as the zone's own name.
    const { settings } = await client.command("settings:update", {
      importWindow: { start: "01:00", end: "05:00", timezone: "europe/paris" },
    });
    expect(settings.importWindow).toEqual({ start: "01:00", end: "05:00", timezone: "Europe/Paris" });
    await client.command("settings:update", { importWindow: null });
  });

  it("runs a saved selection and a manual import outside the window, and no scheduled one", async () => {
    // Opens in 10 hours of the region's clock: 10 real minutes, more than this test takes.
    const closed = {
      start: hhmm(regionNow() + 10 * 60 * MINUTE),
      end: hhmm(regionNow() + 11 * 60 * MINUTE),
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

  it("runs on past the window's end a scheduled import that a saved selection joined", async () => {
    const { from, next } = await scheduledImportUnderWay(0, 30_000);
    const version = next.version;
    // A save while it runs joins it ("images selected mid-import join it")...
    const joinedAt = region.output().length;
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
      ],
    });
    // ...and the window closes while it still downloads.
    const closedAt = region.output().length;
    await setWindowEnd(boundaryAfter(3 * MINUTE));
    await logged(region, /"msg":"import window closed"/, "the window's end", closedAt);
    mirror.proxy.bytesPerSecond = Infinity;
    const done = await waitFor(
      client,
      (s) => !s.import.running && imports.slice(from).some((i) => !i.running),
      120_000,
      "the import's end",
    );
    const runs = imports.slice(from).filter((i) => !i.running);
    expect(runs).toHaveLength(1);
    expect(done.import).toMatchObject({ trigger: "schedule", error: null });
    expect(done.images.get(NOBLE)).toMatchObject({ state: "synced", version, next: null });
    expect(done.images.get(JAMMY)).toMatchObject({ state: "synced" });
    expect(region.output().slice(joinedAt)).toMatch(/images selected mid-import join it/);
  }, 240_000);

  it("pauses a scheduled import when its window closes, keeping its partial files, and resumes it at the next window, across a restart", async () => {
    // Noble alone again (the save imports at once), so the bytes counted below are noble's.
    const saved = imports.length;
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    await waitFor(
      client,
      (s) =>
        !s.images.has(JAMMY) && imports.slice(saved).some((i) => !i.running && i.trigger === "selection"),
      60_000,
      "jammy deselected",
    );
    // Some of it fetched (3 MiB of 20), then the window closes.
    const { from, next } = await scheduledImportUnderWay(3 * MiB, 60_000);
    const { version, bytesTotal: total } = next;
    const closesAt = boundaryAfter(3 * MINUTE);
    await setWindowEnd(closesAt);

    const paused = await waitFor(
      client,
      (s) => !s.import.running && /paused/.test(s.import.error ?? ""),
      60_000,
      "the pause",
    );
    expect(regionNow()).toBeGreaterThanOrEqual(closesAt);
    expect(paused.import).toMatchObject({
      trigger: "schedule",
      error: expect.stringMatching(/import window .* closed/),
    });
    // Still served, the new version queued again; what was fetched stays on disk.
    expect(paused.images.get(NOBLE)).toMatchObject({ state: "synced", next: { version, state: "queued" } });
    expect(await partialBytes(region.dataDir)).toBeGreaterThan(0);
    expect(imports.slice(from).filter((i) => i.running)).toHaveLength(1);

    // A restart while paused, with a schedule that never fires: only what the region recorded (a
    // scheduled import waits for the window) can bring the import back.
    client.close();
    await region.stop();
    region = await startRegion({
      dataDir: region.dataDir,
      env: { IMPORT_SCHEDULE: NEVER, BOOTSTREAM_TEST_CLOCK: TEST_CLOCK },
    });
    await connect();
    expect(client.state.import.running).toBe(false);

    // The next window opens at a minute boundary a few seconds away; nothing runs before it.
    mirror.proxy.bytesPerSecond = Infinity;
    const opensAt = boundaryAfter(5 * MINUTE);
    const before = mirror.proxy.bytesToClient;
    const waiting = imports.length;
    await client.command("settings:update", {
      importWindow: { start: hhmm(opensAt), end: hhmm(opensAt + 600 * MINUTE), timezone: "UTC" },
    });
    const resumed = await waitFor(client, (s) => s.import.running, 60_000, "the resumed import");
    expect(regionNow()).toBeGreaterThanOrEqual(opensAt);
    expect(resumed.import.trigger).toBe("schedule");
    expect(imports.slice(waiting).filter((i) => i.running)).toHaveLength(1);
    const done = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.version === version && !s.import.running,
      60_000,
      "the new version served",
    );
    expect(done.images.get(NOBLE)).toMatchObject({ state: "synced", next: null, error: null });
    expect(done.import).toMatchObject({ trigger: "schedule", error: null });
    // Resumed from the partial bytes: it fetched less than the whole version again.
    expect(mirror.proxy.bytesToClient - before).toBeLessThan(total - 2 * MiB);
  }, 240_000);
});
