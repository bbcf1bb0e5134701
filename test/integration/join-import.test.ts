import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { createLogger } from "../../apps/server/src/log";
import { removeDir } from "../helpers/region";
import { regionConfig } from "../helpers/in-process";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const TOKEN = "join-import-admin-token-0123456789abcdef";
const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";

// In-process, to count the import runs in the region's own database.
describe("an image selected mid-import", () => {
  let mirror: TestMirror;
  let dataDir: string;
  let region: RegionHandle;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({}, 48 * 1024);
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-join-"));
    region = await startRegion(
      regionConfig(dataDir, { adminToken: TOKEN, bootSourceUrl: mirror.url }),
      createLogger("silent", "join-import"),
    );
    client = await watch(region.url, TOKEN);
  });
  afterAll(async () => {
    client?.close();
    await region?.close();
    await mirror?.close();
    if (dataDir) await removeDir(dataDir);
  });

  it("joins the running import (downloads in the same run) instead of waiting for the next one", async () => {
    // A fresh region imports noble at once.
    const first = await waitFor(client, (s) => s.images.get(NOBLE)?.state === "downloading", 30_000, "noble");
    const startedAt = first.import.startedAt;
    const { selection } = await client.command("selection:save", {
      revision: first.selection.revision,
      items: [
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
      ],
    });
    expect(selection.revision).toBe(first.selection.revision + 1);
    const joined = await waitFor(
      client,
      (s) => s.images.get(JAMMY)?.state === "downloading",
      60_000,
      "jammy downloading",
    );
    expect(joined.import.running, "still the first import").toBe(true);
    expect(joined.import.startedAt).toBe(startedAt);
    const done = await waitFor(client, (s) => s.import.running === false, 60_000, "the import to end");
    expect(done.import.startedAt).toBe(startedAt);
    expect(done.import.error).toBeNull();
    expect(done.images.get(NOBLE)?.state).toBe("synced");
    expect(done.images.get(JAMMY)?.state).toBe("synced");
    await region.context.importer.idle();
    const runs = (await region.context.db.source.query("SELECT id FROM import_run")) as unknown[];
    expect(runs, "one run imported both").toHaveLength(1);
  });
});
