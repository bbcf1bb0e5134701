import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatePostgresAndRedis } from "../helpers/services";
import type { RegionProcess } from "../helpers/region";
import { oneLeader, startCluster, unverified, type Cluster } from "../helpers/cluster";
import { imageFiles, imageShas, startMirror, type TestMirror } from "../helpers/mirror";
import { storeFiles } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

const services = await gatePostgresAndRedis();

const LEASE_S = 3;
const ADMIN = "cluster-admin-0123456789abcdef0123456789";
const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;

/** The `.partial` files a node's store holds. */
async function partials(dataDir: string): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const names = await readdir(path.join(dataDir, "partial")).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith(".partial"));
}

async function metric(region: RegionProcess, name: string): Promise<number> {
  const text = await (await fetch(`${region.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!match) throw new Error(`${name} not in /metrics of ${region.url}`);
  return Number(match[1]);
}

describe.skipIf(services.skip)("every region node holds a verified store (region-to-region sync)", () => {
  let cluster: Cluster;
  let mirror: TestMirror;
  let regions: RegionProcess[] = [];
  let shas: Set<string>;
  let needed = 0;

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    // Big enough files that the import is well under way when the leader dies, slow enough to catch it.
    mirror = await startMirror(
      {
        releases: ["noble"],
        arches: ["amd64"],
        versions: 1,
        sizes: { squashfs: 6 * MiB, kernel: 1 * MiB, initrd: 2 * MiB },
      },
      // Slow until every node is up and following (the leader imports at once), then 512 KiB/s a connection.
      64 * 1024,
    );
    const files = await imageFiles(mirror, "noble", "amd64");
    shas = new Set(files.keys());
    needed = [...files.values()].reduce((sum, size) => sum + size, 0);
    cluster = await startCluster({
      nodes: 3,
      adminToken: ADMIN,
      redis: { db: 4 },
      leaseSeconds: LEASE_S,
      env: { BOOT_SOURCE_URL: mirror.url },
    });
    regions = cluster.regions;
  });
  afterAll(async () => {
    await cluster?.stop();
    await mirror?.close();
  });

  it("kill -9 of the leader mid-import: a new leader within the lease, < 1.05x the bytes from upstream, every store verified", async () => {
    const leader = await oneLeader(regions, 20_000);
    const others = regions.filter((r) => r !== leader);
    expect(needed).toBeGreaterThan(8 * MiB);
    mirror.proxy.bytesPerSecond = MiB / 2;
    // The fresh cluster imports its default selection (noble/amd64) at once: kill the leader mid-way.
    await expect
      .poll(() => mirror.proxy.bytesToClient, { timeout: 30_000, interval: 50 })
      .toBeGreaterThan(needed * 0.4);
    expect(mirror.proxy.bytesToClient).toBeLessThan(needed * 0.9);
    await leader.kill();
    const killedAt = Date.now();
    const next = await oneLeader(others, (LEASE_S + 5) * 1000);
    expect(Date.now() - killedAt).toBeLessThan((LEASE_S + 5) * 1000);

    const onNext = await watch(next.url, ADMIN);
    await waitFor(
      onNext,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running,
      60_000,
      "the import finished by the new leader",
    );
    onNext.close();
    // What the killed leader had of its files was followed by the others as it came in.
    const ratio = (mirror.proxy.bytesToClient / needed).toFixed(3);
    expect(mirror.proxy.bytesToClient, `upstream bytes / image bytes: ${ratio}`).toBeLessThan(needed * 1.05);

    // Every node's store holds every file, re-hashed; the killed one too once it is back.
    const back = await cluster.start({ dataDir: leader.dataDir });
    regions[regions.indexOf(leader)] = back;
    for (const region of regions)
      await expect.poll(() => unverified(region.dataDir, shas), { timeout: 30_000 }).toEqual([]);
    // The followers got their files from peers, and say so.
    for (const region of regions.filter((r) => r !== next))
      expect(
        await metric(region, "bootstream_peer_sync_bytes"),
        `${region === back ? "the node that came back" : "the follower"}: ${region.output().slice(-3000)}`,
      ).toBeGreaterThan(0);
    expect(await metric(next, "bootstream_leader")).toBe(1);
    // Nothing more came from upstream for the node that came back.
    expect(mirror.proxy.bytesToClient).toBeLessThan(needed * 1.05);
  });

  it("a follower's store follows the leader's: the files of a version switched away go from every node", async () => {
    const leader = await oneLeader(regions, 20_000);
    mirror.proxy.bytesPerSecond = 16 * MiB;
    const old = shas;
    await mirror.addVersion();
    const fresh = await imageShas(mirror, "noble", "amd64");
    const gone = [...old].filter((sha) => !fresh.has(sha));
    expect(gone.length).toBeGreaterThan(0);
    // Every node holds the old version's files before the switch.
    for (const region of regions) expect(await unverified(region.dataDir, old)).toEqual([]);

    const onLeader = await watch(leader.url, ADMIN);
    const version = onLeader.state.images.get(NOBLE)?.version;
    await onLeader.command("import:start", {});
    await waitFor(
      onLeader,
      (s) =>
        !s.import.running &&
        s.images.get(NOBLE)?.state === "synced" &&
        s.images.get(NOBLE)?.version !== version,
      60_000,
      "noble switched to the new version",
    );
    onLeader.close();
    // The leader's garbage collection drops the old files (no rack pins them); each follower's store
    // follows: the new version verified, nothing of the old one left, no .partial behind.
    for (const region of regions) {
      await expect.poll(() => unverified(region.dataDir, fresh), { timeout: 30_000 }).toEqual([]);
      await expect
        .poll(async () => [...(await storeFiles(region.dataDir)).keys()].filter((sha) => !fresh.has(sha)), {
          timeout: 30_000,
        })
        .toEqual([]);
      await expect.poll(() => partials(region.dataDir), { timeout: 10_000 }).toEqual([]);
    }
  });
});
