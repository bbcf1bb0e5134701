import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { waitFor, watch } from "../helpers/watch";

// What docs/alerts.yml alerts on, read from a real region's /metrics while a real rack goes offline,
// an update becomes available and the source stops offering an image.

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";

async function metrics(region: RegionProcess): Promise<string> {
  return (await fetch(`${region.url}/metrics`)).text();
}

/** The value of one series (`name{labels}`), or undefined when it is not exposed. */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Selects jammy and noble (amd64) and waits for their import to end with both synced. */
async function importBoth(client: BootstreamClient, what: string): Promise<void> {
  await client.command("selection:save", {
    revision: client.state.selection.revision,
    items: [
      { os: "ubuntu", release: "jammy", arches: ["amd64"] },
      { os: "ubuntu", release: "noble", arches: ["amd64"] },
    ],
  });
  await waitFor(
    client,
    (s) => !s.import.running && [JAMMY, NOBLE].every((id) => s.images.get(id)?.state === "synced"),
    30_000,
    what,
  );
}

describe("metrics for alerting", () => {
  let mirror: TestMirror;
  let nobleOnly: TestMirror;
  let region: RegionProcess;
  let rack: RackProcess | null = null;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"], versions: 1 });
    nobleOnly = await startMirror({ releases: ["noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({
      env: { BOOT_SOURCE_URL: mirror.url, IMPORT_SCHEDULE: "*/1 * * * * *" },
    });
    client = await watch(region.url, region.adminToken);
    // The region's own first import saves the default selection (as "system"): a save before it
    // ends can meet a newer revision than the one it read.
    await waitFor(
      client,
      (s) => !s.import.running && s.import.finishedAt !== null,
      30_000,
      "the first import",
    );
    // Only the schedule's look at the source from now on: no import.
    await client.command("settings:update", { autoImport: false });
    await importBoth(client, "the selection's first import");
  });
  afterAll(async () => {
    client?.close();
    await rack?.stop();
    if (rack) await removeDir(rack.dataDir);
    if (region) {
      await region.stop();
      await removeDir(region.dataDir);
    }
    await mirror?.close();
    await nobleOnly?.close();
  });

  it("exposes one series per rack: 1 online, 0 offline, gone when forgotten", async () => {
    rack = await startRack({ regionUrl: region.url, name: "rack-1" });
    await waitFor(client, (s) => s.racks.some((r) => r.name === "rack-1" && r.online), 20_000, "rack online");
    let text = await metrics(region);
    expect(value(text, 'bootstream_rack_online{rack="rack-1"}')).toBe(1);
    expect(value(text, 'bootstream_racks{online="false"}')).toBe(0);

    await rack.stop();
    await waitFor(client, (s) => s.racks.some((r) => r.name === "rack-1" && !r.online), 20_000, "offline");
    text = await metrics(region);
    expect(value(text, 'bootstream_rack_online{rack="rack-1"}')).toBe(0);
    expect(value(text, 'bootstream_racks{online="false"}')).toBe(1);

    await client.command("rack:remove", { name: "rack-1" });
    expect(value(await metrics(region), 'bootstream_rack_online{rack="rack-1"}')).toBeUndefined();
  });

  it("counts available updates by state, with every state exposed", async () => {
    let text = await metrics(region);
    for (const state of ["available", "queued", "downloading", "failed"])
      expect(value(text, `bootstream_image_updates{state="${state}"}`)).toBe(0);
    expect(value(text, "bootstream_last_import_finished_timestamp_seconds")).toBeGreaterThan(0);
    expect(value(text, "bootstream_auto_import")).toBe(0);

    await mirror.addVersion();
    await waitFor(
      client,
      (s) => [JAMMY, NOBLE].every((id) => s.images.get(id)?.next?.state === "available"),
      20_000,
      "the schedule marks the new version available",
    );
    text = await metrics(region);
    expect(value(text, 'bootstream_image_updates{state="available"}')).toBe(2);
    expect(value(text, "bootstream_boot_source_last_read_timestamp_seconds")).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
    expect(value(text, 'bootstream_images{state="synced"}')).toBe(2);
    expect(value(text, 'bootstream_images{state="failed"}')).toBe(0);
  });

  it("counts images served with a warning", async () => {
    expect(value(await metrics(region), "bootstream_image_warnings")).toBe(0);
    await client.command("source:update", { url: nobleOnly.url });
    await waitFor(client, (s) => s.images.get(JAMMY)?.warning != null, 20_000, "the warning on jammy");
    const text = await metrics(region);
    expect(value(text, "bootstream_image_warnings")).toBe(1);
    // Still served: not a failure.
    expect(value(text, 'bootstream_images{state="failed"}')).toBe(0);
  });

  it("exposes every metric docs/alerts.yml alerts on", async () => {
    const rules = await readFile(new URL("../../docs/alerts.yml", import.meta.url), "utf8");
    const exprs = rules.match(/expr:[^]*?(?=\n\s+for:)/g) ?? [];
    const used = new Set(exprs.flatMap((e) => e.match(/\bbootstream_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(5);
    const exposed = new Set(
      [...(await metrics(region)).matchAll(/^# TYPE (bootstream_[a-z_]+) /gm)].map((m) => m[1]),
    );
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe("memory after an import", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  afterAll(async () => {
    client?.close();
    if (region) {
      await region.stop();
      await removeDir(region.dataDir);
    }
    await mirror?.close();
  });

  it("gives back what the import held: a full collection follows its end", async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    client = await watch(region.url, region.adminToken);
    await waitFor(
      client,
      (s) => !s.import.running && s.import.finishedAt !== null,
      30_000,
      "the first import",
    );
    // V8 runs no full collection of its own in an idle region (src/memory.ts): each one counted
    // here after an import's end is the region's. The first import's comes a moment after its end.
    const majors = async () =>
      value(await metrics(region), 'nodejs_gc_duration_seconds_count{kind="major"}') ?? 0;
    await expect.poll(majors, { timeout: 10_000 }).toBeGreaterThan(0);
    const before = await majors();
    await importBoth(client, "the selection's import");
    await expect.poll(majors, { timeout: 10_000 }).toBeGreaterThan(before);
  });
});
