import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const ARM = "ubuntu/noble/arm64";
const MB = 1_000_000;
const MiB = 1024 * 1024;

describe("settings.bandwidthLimit", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    // Images of about 20 MB each.
    mirror = await startMirror({
      releases: ["noble"],
      arches: ["amd64", "arm64"],
      centos: [],
      sizes: { kernel: 1 * MiB, initrd: 2 * MiB, squashfs: 16 * MiB, root: 1 * MiB },
    });
    // The default source is unreachable: nothing imports before the cap is set.
    region = await startRegion();
    client = await watch(region.url, region.adminToken);
  });
  let exited = false;
  afterAll(async () => {
    client?.close();
    if (!exited) await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
  });

  it("refuses a cap that is not a whole number of bytes a second of at least 1 kB/s, changing nothing", async () => {
    for (const bandwidthLimit of [0, 999, 1.5, -1, "20MB/s"]) {
      await expect(
        client.command("settings:update", { bandwidthLimit } as unknown as { bandwidthLimit: number }),
      ).rejects.toMatchObject({ code: "invalid" });
    }
    await expect(client.command("settings:update", {})).rejects.toMatchObject({ code: "invalid" });
    expect(client.state.settings.bandwidthLimit).toBeNull();
  });

  it("holds a 20 MB import at 2 MB/s to at least 9 s, and lifting the cap mid-import speeds it up without a restart", async () => {
    const { settings } = await client.command("settings:update", { bandwidthLimit: 2 * MB });
    expect(settings).toEqual({ autoImport: true, bandwidthLimit: 2 * MB, importWindow: null });
    await client.command("source:update", { url: mirror.url });
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    const started = await waitFor(client, (s) => (s.images.get(NOBLE)?.bytesDone ?? 0) > 0, 30_000, "bytes");
    const t0 = Date.now();
    const total = started.images.get(NOBLE)!.bytesTotal;
    expect(total).toBeGreaterThanOrEqual(20 * MB);
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 60_000, "first version synced");
    // 20 MB at 2 MB/s: 10 s, less the bucket's burst and what the first chunks took before t0.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9_000);

    // A second image, same cap: a quarter of it under the cap, then lift it.
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] }],
    });
    const capped = await waitFor(
      client,
      (s) => (s.images.get(ARM)?.bytesDone ?? 0) > 0,
      30_000,
      "arm64 bytes",
    );
    const importStarted = capped.import.startedAt;
    const t1 = Date.now();
    await waitFor(client, (s) => (s.images.get(ARM)?.bytesDone ?? 0) >= 5 * MB, 30_000, "5 MB");
    const cappedMs = Date.now() - t1;
    // The cap itself is asserted on the first image (20 MB in at least 9 s); here the first bytes seen
    // may arrive late on a loaded machine (coalesced progress), so no lower bound on these 5 MB.
    const lifted = await client.command("settings:update", { bandwidthLimit: null });
    expect(lifted.settings.bandwidthLimit).toBeNull();
    const t2 = Date.now();
    const done = await waitFor(
      client,
      (s) => s.images.get(ARM)?.state === "synced" && !s.import.running,
      30_000,
      "arm64 synced",
    );
    // The remaining ~15 MB would take 7.5 s more under the cap; uncapped on loopback it takes far less
    // than the 5 MB before did. The same import run finished it: no restart.
    expect(Date.now() - t2).toBeLessThan(cappedMs + 7_500);
    expect(done.import.startedAt).toBe(importStarted);
    expect(done.import.error).toBeNull();
    expect(done.images.get(ARM)).toMatchObject({ state: "synced", error: null });
  });

  it("stops at once under a cap as low as 1 kB/s: import:stop answers, and so does SIGTERM", async () => {
    // One batch's debt at 1,000 B/s is over a minute: neither may wait it off (the test's bound).
    await client.command("settings:update", { bandwidthLimit: 1000 });
    await mirror.addVersion();
    // One batch passes the cap at once, then its debt holds every other file: whichever image that
    // batch belongs to (amd64 or arm64, the pool's order) is the one that shows downloading.
    const downloading = (s: typeof client.state) =>
      [NOBLE, ARM].some((id) => s.images.get(id)?.next?.state === "downloading");
    await client.command("import:start", {});
    await waitFor(client, downloading, 30_000, "the update downloading");
    const { import: stopped } = await client.command("import:stop", {});
    expect(stopped.running).toBe(false);

    await client.command("import:start", {});
    await waitFor(client, (s) => s.import.running && downloading(s), 30_000, "the update downloading again");
    exited = true;
    expect(await region.stop()).toBe(0);
    expect(region.output()).toMatch(/region stopped/);
  }, 60_000);
});
