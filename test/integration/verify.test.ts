import { readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { TEST_RACK_SECRET, type RegionProcess } from "../helpers/region";
import { imageFiles } from "../helpers/mirror";
import { publishedShas, startRackSite, type RackProcess, type RackSite } from "../helpers/rack";
import { send, connect } from "../helpers/sockets";
import { flipByte, sha256File } from "../helpers/store";
import { runCli } from "../helpers/cli";
import { waitFor } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;

const cli = runCli;

async function filesStatus(region: RegionProcess, sha: string): Promise<number> {
  const response = await fetch(`${region.url}/files/${sha}`, {
    headers: { authorization: `Bearer ${TEST_RACK_SECRET}` },
  });
  await response.arrayBuffer();
  return response.status;
}

async function corruptGauge(region: RegionProcess): Promise<string | undefined> {
  const text = await (await fetch(`${region.url}/metrics`)).text();
  return /^bootstream_store_corrupt_files (\d+)$/m.exec(text)?.[1];
}

/** The path of the mirror's payload with this sha256 (its bytes, hashed). */
async function findBySha(dir: string, sha: string): Promise<string> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    if ((await stat(full)).size > 1024 * 1024 && (await sha256File(full)) === sha) return full;
  }
  throw new Error(`no file with sha256 ${sha} under ${dir}`);
}

describe("store:verify finds a corrupt file, takes it out of service and repairs it", () => {
  let site: RackSite;
  let region: RegionProcess;
  let client: BootstreamClient;
  let rack: RackProcess;
  let sha: string;
  let regionFile: string;

  beforeAll(async () => {
    // A fresh region imports the default selection (noble/amd64); a rack then pulls it.
    site = await startRackSite({
      releases: ["noble"],
      arches: ["amd64"],
      versions: 1,
      sizes: { squashfs: 2 * MiB },
    });
    ({ region, client } = site);
    rack = await site.startRack({ name: "rack-1" });
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "rack-synced", 30_000, "rack-synced");
    const files = await imageFiles(site.mirror, "noble", "amd64");
    sha = [...files].sort((a, b) => b[1] - a[1])[0]![0];
    regionFile = path.join(region.dataDir, "store", sha.slice(0, 2), sha);
  });
  afterAll(async () => {
    await site?.stop();
  });

  it("a clean store verifies clean (exit 0), and bad input changes nothing", async () => {
    const clean = await cli(["verify", "--url", region.url, "--token", region.adminToken]);
    expect(clean.stderr).toBe("");
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/: clean$/m);
    expect(client.state.verify).toMatchObject({ running: false, corrupt: [], repaired: [], error: null });
    expect(client.state.verify.bytesDone).toBe(client.state.verify.bytesTotal);
    expect(client.state.verify.bytesTotal).toBeGreaterThan(2 * MiB);

    const usage = await cli(["verify", "--repiar", "--url", region.url, "--token", region.adminToken]);
    expect(usage.code).toBe(2);
    // Admin only: a viewer is refused, and nothing runs.
    const { token: viewer } = await client.command("token:create", { role: "viewer", name: "noc" });
    const refused = await cli(["verify", "--url", region.url, "--token", viewer]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^bootstream verify: forbidden: .*needs an admin token/);
    // A token the region does not know, a port nothing listens on: the one-shot commands' words.
    for (const args of [["verify"], ["verify", "--watch"], ["status", "--watch"]]) {
      const unknown = await cli([...args, "--url", region.url, "--token", "not-a-token"]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/unauthorized: token not accepted \(unknown or revoked\)$/m);
    }
    const closed = await cli(["verify", "--url", "http://127.0.0.1:1", "--token", region.adminToken]);
    expect(closed.code).toBe(1);
    expect(closed.stderr).toMatch(/cannot reach the region at http:\/\/127\.0\.0\.1:1: /);
    const { socket } = await connect(region.url, region.adminToken);
    try {
      const bad = await send(socket, "store:verify", { repair: "yes" } as never);
      expect(bad).toMatchObject({ ok: false, error: { code: "invalid" } });
    } finally {
      socket.close();
    }
  });

  it("a flipped byte: the rack refuses the bad bytes; verify takes the file out of service (exit 1)", async () => {
    await flipByte(regionFile);
    // The rack loses its own copy and pulls it again: the region (not verified yet) sends the bad
    // bytes, and the rack's downloader refuses them (sha256 mismatch), keeping what it published.
    const seen = rack.logs().length;
    await rm(path.join(rack.dataDir, "store", sha.slice(0, 2), sha));
    const refused = await rack.waitForLog("file download failed", 30_000, seen);
    expect(refused.sha256).toBe(sha);
    await expect(stat(path.join(rack.dataDir, "store", sha.slice(0, 2), sha))).rejects.toThrow();

    const run = await cli(["verify", "--url", region.url, "--token", region.adminToken]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`corrupt ${sha}`);
    expect(run.stdout).toMatch(/1 corrupt file out of service/);

    const state = await waitFor(client, (s) => s.images.get(NOBLE)?.warning != null, 10_000, "warning");
    expect(state.verify).toMatchObject({ running: false, corrupt: [sha], repaired: [] });
    expect(state.images.get(NOBLE)!.warning).toMatch(/^corrupt in the region store: squashfs/);
    expect(await filesStatus(region, sha)).toBe(404);
    expect(await corruptGauge(region)).toBe("1");
    // Kept as evidence, out of the store.
    expect(await sha256File(path.join(region.dataDir, "quarantine", sha))).not.toBe(sha);
    await expect(stat(regionFile)).rejects.toThrow();
    // No manifest sends a rack after it: the rack publishes a set without the image.
    await waitFor(client, (s) => s.racks[0]?.imagesTotal === 0, 20_000, "manifest without noble");
  });

  it("a restart remembers the corrupt file", async () => {
    expect(await site.restartRegion({ PORT: new URL(region.url).port })).toBe(0);
    ({ region, client } = site);
    expect(client.state.verify.corrupt).toEqual([sha]);
    expect(client.state.images.get(NOBLE)!.warning).toMatch(/^corrupt in the region store/);
    expect(await filesStatus(region, sha)).toBe(404);
    expect(await corruptGauge(region)).toBe("1");
  });

  it("an import while the file is out of service keeps the warning on, in every event and after", async () => {
    // The source cannot give the file back (gone from the mirror): the import plans it, tries it
    // and fails, and the file stays out of service all along.
    const mirrored = await findBySha(site.mirror.dir, sha);
    await rename(mirrored, `${mirrored}.away`);
    try {
      const warnings: (string | null)[] = [];
      const off = client.subscribe((change, s) => {
        if (change === "image") warnings.push(s.images.get(NOBLE)?.warning ?? null);
      });
      try {
        const { import: started } = await client.command("import:start", {});
        const ended = await waitFor(
          client,
          (s) =>
            !s.import.running && s.import.startedAt === started.startedAt && s.import.finishedAt !== null,
          30_000,
          "the import ended",
        );
        expect(ended.import.error).toMatch(/failed/);
      } finally {
        off();
      }
      // The import's own events (planned, download failed) each carried the warning.
      expect(warnings.length).toBeGreaterThan(0);
      for (const warning of warnings) expect(warning).toMatch(/^corrupt in the region store: squashfs/);
      expect(client.state.images.get(NOBLE)!.warning).toMatch(/^corrupt in the region store: squashfs/);
      expect(client.state.verify.corrupt).toEqual([sha]);
      expect(await filesStatus(region, sha)).toBe(404);
    } finally {
      await rename(`${mirrored}.away`, mirrored);
    }
  });

  it("verify --repair fetches it again from the source; the rack then syncs the right bytes", async () => {
    const run = await cli([
      "verify",
      "--repair",
      "--watch",
      "--url",
      region.url,
      "--token",
      region.adminToken,
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`repaired ${sha}`);
    expect(run.stdout).toMatch(/verifying and repairing/);

    const state = await waitFor(client, (s) => s.images.get(NOBLE)?.warning === null, 10_000, "warning gone");
    expect(state.verify).toMatchObject({
      running: false,
      repair: true,
      corrupt: [],
      repaired: [sha],
      error: null,
    });
    expect(await sha256File(regionFile)).toBe(sha);
    expect(await filesStatus(region, sha)).toBe(200);
    expect(await corruptGauge(region)).toBe("0");
    await expect(stat(path.join(region.dataDir, "quarantine", sha))).rejects.toThrow();

    const synced = await waitFor(
      client,
      // The rack's own event follows the image's: wait for both.
      (s) =>
        s.images.get(NOBLE)?.state === "rack-synced" &&
        s.racks[0]?.error === null &&
        s.racks[0]?.imagesSynced === 1,
      40_000,
      "rack-synced again",
    );
    expect(synced.racks[0]).toMatchObject({ online: true, imagesSynced: 1, imagesTotal: 1 });
    expect(await sha256File(path.join(rack.dataDir, "store", sha.slice(0, 2), sha))).toBe(sha);
    expect(await publishedShas(rack)).toContain(sha);

    const { entries } = await client.command("audit:list", {});
    const verifies = entries.filter((e) => e.action === "store:verify");
    expect(verifies.map((e) => e.detail)).toEqual([
      expect.stringMatching(/^verify and repair \d+ file\(s\)$/),
      expect.stringMatching(/^verify \d+ file\(s\)$/),
      expect.stringMatching(/^verify \d+ file\(s\)$/),
    ]);
  });

  it("a file deleted from the store is found missing, taken out of service, and --repair fetches it", async () => {
    await rm(regionFile);
    const run = await cli(["verify", "--url", region.url, "--token", region.adminToken]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`corrupt ${sha}`);
    const state = await waitFor(client, (s) => s.images.get(NOBLE)?.warning != null, 10_000, "warning");
    expect(state.verify).toMatchObject({ running: false, corrupt: [sha], repaired: [] });
    expect(state.images.get(NOBLE)!.warning).toMatch(/^corrupt in the region store: squashfs/);
    expect(await corruptGauge(region)).toBe("1");
    expect(region.output()).toContain("stored files are missing: out of service until repaired");
    // Not withheld from racks (a lost store would make every rack drop every image): the rack keeps
    // its copy, checked against the sha256 when it came, and goes on publishing it.
    expect(client.state.racks[0]).toMatchObject({ imagesSynced: 1, imagesTotal: 1 });
    expect(await publishedShas(rack)).toContain(sha);

    const repaired = await cli(["verify", "--repair", "--url", region.url, "--token", region.adminToken]);
    expect(repaired.code).toBe(0);
    const after = await waitFor(client, (s) => s.images.get(NOBLE)?.warning === null, 10_000, "warning gone");
    expect(after.verify).toMatchObject({ corrupt: [], repaired: [sha], error: null });
    expect(await sha256File(regionFile)).toBe(sha);
    expect(await filesStatus(region, sha)).toBe(200);
  });
});
