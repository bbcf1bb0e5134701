import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { imageFiles } from "../helpers/mirror";
import { publishedShas, startRackSite, type RackSite } from "../helpers/rack";
import { flipByte, sha256File } from "../helpers/store";
import { waitFor } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;
/** A pattern that never fires (31 February). */
const NEVER = "0 0 0 31 2 *";

describe("a rack agent verifies its own store on its schedule", () => {
  let site: RackSite;
  let client: BootstreamClient;

  beforeAll(async () => {
    site = await startRackSite({
      releases: ["noble"],
      arches: ["amd64"],
      versions: 1,
      sizes: { squashfs: 2 * MiB },
    });
    client = site.client;
  });
  afterAll(async () => {
    await site?.stop();
  });

  it("refuses a bad --verify-schedule with exit 2", async () => {
    const bad = await site.startRack({ name: "bad", env: { VERIFY_SCHEDULE: "weekly" } });
    const code = await new Promise<number | null>((resolve) => {
      if (bad.child.exitCode !== null) resolve(bad.child.exitCode);
      else bad.child.once("exit", (exit) => resolve(exit));
    });
    expect(code).toBe(2);
    expect(bad.output()).toMatch(/^bootstream rack: invalid VERIFY_SCHEDULE: "weekly" is not a cron pattern/);
  });

  it("finds a flipped byte, removes the file, pulls it again and publishes the right bytes", async () => {
    // Syncs only when told (manifest, sync:now); the store is verified every 2 s.
    const rack = await site.startRack({
      name: "rack-1",
      env: { RACK_SYNC_SCHEDULE: NEVER, VERIFY_SCHEDULE: "*/2 * * * * *" },
    });
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "rack-synced", 30_000, "rack-synced");
    const files = await imageFiles(site.mirror, "noble", "amd64");
    const expected = [...files.keys()].sort();
    const sha = [...files].sort((a, b) => b[1] - a[1])[0]![0];
    const clean = await rack.waitForLog("store verified");
    expect(clean).toMatchObject({ corrupt: [] });
    expect(clean.files).toBe(files.size);

    const seen = rack.logs().length;
    // The store file and the published tree share the inode: a machine would boot the bad bytes.
    await flipByte(path.join(rack.dataDir, "store", sha.slice(0, 2), sha));
    expect(await publishedShas(rack)).not.toEqual(expected);

    const corruptLine = "stored file corrupt: removed, pulling it again";
    const found = await rack.waitForLog(corruptLine, 20_000, seen);
    expect(found.sha256).toBe(sha);
    // Read on from the verify that found it: the 2-second schedule may have run a clean verify and
    // its "sync finished" (unchanged) after `seen`, while the byte was being flipped.
    const from =
      seen +
      rack
        .logs()
        .slice(seen)
        .findIndex((line) => line.msg === corruptLine) +
      1;
    const pulled = await rack.waitForLog("file downloaded", 20_000, from);
    expect(pulled.sha256).toBe(sha);
    const finished = await rack.waitForLog("sync finished", 20_000, from);
    expect(finished).toMatchObject({ trigger: "verify", result: "published", downloaded: 1 });

    expect(await sha256File(path.join(rack.dataDir, "store", sha.slice(0, 2), sha))).toBe(sha);
    expect(await publishedShas(rack)).toEqual(expected);
    const state = await waitFor(
      client,
      // The rack's own event follows the image's: wait for both.
      (s) => s.images.get(NOBLE)?.state === "rack-synced" && s.racks[0]?.imagesSynced === 1,
      20_000,
      "still rack-synced",
    );
    expect(state.racks[0]).toMatchObject({ name: "rack-1", error: null, imagesSynced: 1 });
  });
});
