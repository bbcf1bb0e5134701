import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { runCli } from "../helpers/cli";
import { waitFor, watch } from "../helpers/watch";

const JAMMY = "ubuntu/jammy/amd64";
const NOBLE = "ubuntu/noble/amd64";

const cli = runCli;

// A selected release the source stops offering (end of life upstream, a mirror without it) is kept
// with a warning; the selection around it must stay editable.
describe("a selected release the boot source no longer offers", () => {
  let full: TestMirror;
  let partial: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  let closed = false;

  beforeAll(async () => {
    full = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64", "arm64"], versions: 1 });
    partial = await startMirror({ releases: ["noble"], arches: ["amd64", "arm64"], versions: 1 });
    region = await startRegion({ env: { BOOT_SOURCE_URL: full.url } });
    client = await watch(region.url, region.adminToken);
    await waitFor(client, (s) => s.selection.revision > 0 && !s.import.running, 30_000, "the first import");
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    });
    await waitFor(
      client,
      (s) =>
        !s.import.running &&
        s.images.get(JAMMY)?.state === "synced" &&
        s.images.get(NOBLE)?.state === "synced",
      30_000,
      "jammy and noble synced",
    );
    await client.command("source:update", { url: partial.url });
    await waitFor(
      client,
      (s) => !s.import.running && /not offered by/.test(s.images.get(JAMMY)?.warning ?? ""),
      30_000,
      "jammy kept with a warning",
    );
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await full?.close();
    if (!closed) await partial?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("keeps it through a save that changes something else, and refuses only what is new and not offered", async () => {
    const saved = await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
      ],
    });
    expect(saved.selection.items).toContainEqual({ os: "ubuntu", release: "jammy", arches: ["amd64"] });
    const state = await waitFor(
      client,
      (s) => !s.import.running && s.images.get("ubuntu/noble/arm64")?.state === "synced",
      30_000,
      "noble/arm64 synced",
    );
    expect(state.images.get(JAMMY)).toMatchObject({ state: "synced" });

    // What was never selected and is not offered is still refused, changing nothing.
    const revision = client.state.selection.revision;
    await expect(
      client.command("selection:save", {
        revision,
        items: [{ os: "ubuntu", release: "jammy", arches: ["amd64", "arm64"] }],
      }),
    ).rejects.toMatchObject({
      code: "invalid",
      message: expect.stringContaining("ubuntu/jammy is not offered"),
    });
    expect(client.state.selection.revision).toBe(revision);
  });

  it("lets the CLI deselect around it, then drop it", async () => {
    const auth = ["--url", region.url, "--token", region.adminToken];
    const arm = await cli(["deselect", "ubuntu/noble", "--arch", "arm64", ...auth]);
    expect(arm.stderr).toBe("");
    expect(arm.code).toBe(0);
    expect(client.state.selection.items).toContainEqual({
      os: "ubuntu",
      release: "jammy",
      arches: ["amd64"],
    });
    const dropped = await cli(["deselect", "ubuntu/jammy", ...auth]);
    expect(dropped.code).toBe(0);
    await waitFor(client, (s) => !s.images.has(JAMMY), 30_000, "jammy removed");
  });

  it("catalogue says when what it lists is the last read of a source that fails now", async () => {
    const auth = ["--url", region.url, "--token", region.adminToken];
    expect((await cli(["catalogue", ...auth])).stderr).toBe("");
    await partial.close();
    closed = true;
    await client.command("import:start", {});
    await waitFor(client, (s) => s.source.error !== null, 30_000, "the source failing");
    const stale = await cli(["catalogue", ...auth]);
    expect(stale.code).toBe(0);
    expect(stale.stdout).toMatch(/ubuntu\/noble/);
    expect(stale.stderr).toMatch(
      /^bootstream catalogue: the source fails now \(.*\); this is what it offered when last read, 20/,
    );
  });
});
