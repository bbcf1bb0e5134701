import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageFiles } from "../helpers/mirror";
import { startRackSite, type RackSite } from "../helpers/rack";
import { waitFor } from "../helpers/watch";

// A rack that comes back is not taken at its word from before: what the region remembered it held
// (its last inventory, the database's after a restart) may be gone, as with a rack reinstalled on a
// fresh disk under the same name. Its images are rack-synced only once it has reported again.

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;

describe("a rack that reconnects with an empty store", () => {
  let site: RackSite;

  beforeAll(async () => {
    site = await startRackSite({
      releases: ["noble"],
      arches: ["amd64"],
      versions: 1,
      sizes: { squashfs: 2 * MiB },
    });
  }, 60_000);
  afterAll(async () => {
    await site?.stop();
  });

  it("is not shown holding what it held before it went away", async () => {
    const { client } = site;
    const first = await site.startRack({ name: "rack-1" });
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "rack-synced", 30_000, "rack-synced");
    await first.stop();
    // Offline racks never hold an image back: served, synced in the region, with no rack to count.
    await waitFor(
      client,
      (s) => s.racks.every((r) => !r.online) && s.images.get(NOBLE)?.state === "synced",
      20_000,
      "rack-1 offline",
    );

    // The same name, a fresh disk. Every time the image reads rack-synced, the bytes are on it.
    const files = await imageFiles(site.mirror, "noble", "amd64");
    const fresh = await mkdtemp(path.join(tmpdir(), "bootstream-rack-1-fresh-"));
    const claims: boolean[] = [];
    const off = client.subscribe((_change, s) => {
      if (s.images.get(NOBLE)?.state !== "rack-synced") return;
      claims.push(
        [...files.keys()].every((sha) => existsSync(path.join(fresh, "store", sha.slice(0, 2), sha))),
      );
    });
    try {
      const second = await site.startRack({ name: "rack-1", dataDir: fresh });
      await waitFor(
        client,
        (s) => s.images.get(NOBLE)?.state === "rack-synced" && s.racks[0]?.online === true,
        30_000,
        "rack-synced on the new disk",
      );
      await second.waitForLog("sync finished", 10_000);
    } finally {
      off();
    }
    expect(claims.length).toBeGreaterThan(0);
    expect(claims.every(Boolean)).toBe(true);
  }, 90_000);
});
