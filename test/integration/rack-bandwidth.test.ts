import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const MB = 1_000_000;
const MiB = 1024 * 1024;

describe("rack agent --bandwidth-limit", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  const racks: RackProcess[] = [];

  beforeAll(async () => {
    // About 10 MB, imported into the region uncapped.
    mirror = await startMirror({
      releases: ["noble"],
      arches: ["amd64"],
      centos: [],
      versions: 1,
      sizes: { kernel: 1 * MiB, initrd: 1 * MiB, squashfs: 7 * MiB, root: 1 * MiB },
    });
    region = await startRegion();
    client = await watch(region.url, region.adminToken);
    await client.command("source:update", { url: mirror.url });
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 60_000, "region synced");
  });
  afterAll(async () => {
    client?.close();
    for (const rack of racks) await rack.stop();
    await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
    for (const rack of racks) await removeDir(rack.dataDir);
  });

  it.each([
    ["fast", /invalid BANDWIDTH_LIMIT: bandwidth "fast": say e\.g\./],
    // The region's range, in the region's words: under 1 kB/s or over 100 GB/s.
    ["500", /invalid BANDWIDTH_LIMIT: bandwidth "500": a cap is from 1000 B\/s to 93\.13 GiB\/s, or off/],
    ["200GB/s", /invalid BANDWIDTH_LIMIT: bandwidth "200GB\/s": a cap is from 1000 B\/s/],
  ])("refuses the cap %j with exit code 2, naming the setting", async (cap, said) => {
    const rack = await startRack({
      regionUrl: region.url,
      name: "bad-cap",
      env: { BANDWIDTH_LIMIT: cap },
    });
    racks.push(rack);
    const code =
      rack.child.exitCode ??
      (await new Promise<number | null>((resolve) => rack.child.once("exit", resolve)));
    expect(code).toBe(2);
    expect(rack.output()).toMatch(said);
  });

  it("holds a rack's sync of ~10 MB at 2 MB/s to at least 4 s, where an uncapped rack takes far less", async () => {
    const total = client.state.images.get(NOBLE)!.bytesTotal;
    expect(total).toBeGreaterThanOrEqual(10 * MB);
    const timed = async (name: string, env: Record<string, string>) => {
      const rack = await startRack({ regionUrl: region.url, name, env });
      racks.push(rack);
      await rack.waitForLog("sync started", 30_000);
      const t0 = Date.now();
      await rack.waitForLog("sync finished", 60_000);
      return Date.now() - t0;
    };
    const capped = await timed("capped", { BANDWIDTH_LIMIT: "2MB/s" });
    // 10.5 MB at 2 MB/s: 5.2 s, less the bucket's burst.
    expect(capped).toBeGreaterThanOrEqual(4_000);
    const free = await timed("uncapped", {});
    expect(free).toBeLessThan(capped / 2);
    const state = await waitFor(
      client,
      (s) =>
        s.racks.filter((r) => r.imagesSynced === 1).length === 2 &&
        s.images.get(NOBLE)?.state === "rack-synced",
      30_000,
      "both racks synced",
    );
    expect(state.images.get(NOBLE)?.racks).toMatchObject({ synced: 2, total: 2 });
  }, 120_000);
});
