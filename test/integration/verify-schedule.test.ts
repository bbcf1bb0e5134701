import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { imageFiles, startMirror, type TestMirror } from "../helpers/mirror";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { flipByte, sha256File } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

// The region's own scheduled check (VERIFY_SCHEDULE, weekly by default; every 2 s here): a file
// gone bad on the region's disk is found, taken out of service and fetched again with no admin.

const NOBLE = "ubuntu/noble/amd64";

describe("the scheduled store verification", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({
      env: { BOOT_SOURCE_URL: mirror.url, VERIFY_SCHEDULE: "*/2 * * * * *" },
    });
    client = await watch(region.url, region.adminToken);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await region?.stop();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("finds a flipped byte and repairs it from the source, as the schedule, not an admin", async () => {
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "noble synced");
    const files = await imageFiles(mirror, "noble", "amd64");
    const sha = [...files].sort((a, b) => b[1] - a[1])[0]![0];
    const stored = path.join(region.dataDir, "store", sha.slice(0, 2), sha);
    await flipByte(stored);
    expect(await sha256File(stored)).not.toBe(sha);

    // A run that had hashed the file before the flip ends clean; a later tick finds and repairs it.
    await waitFor(client, (s) => s.verify.repaired.includes(sha), 30_000, "the file repaired");
    expect(await sha256File(stored)).toBe(sha);
    await waitFor(client, (s) => s.images.get(NOBLE)?.warning === null, 10_000, "no warning");

    const { entries } = await client.command("audit:list", { limit: 100 });
    const runs = entries.filter((e) => e.action === "store:verify");
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) {
      expect(run.by).toBe("schedule");
      // A tick while a run goes on is skipped: no "joined" entries pile up.
      expect(run.detail).toMatch(/^verify and repair \d+ file\(s\)$/);
    }
    expect(region.output()).toMatch(/"job":"region-verify"/);
  }, 60_000);
});
