import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScratchDatabase, gate, probePostgres, probeRedis, REDIS_URL } from "../helpers/services";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { imageFiles, imageShas, startMirror, type TestMirror } from "../helpers/mirror";
import { storeFiles, sha256File } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

const postgres = await probePostgres();
const redis = await probeRedis();
const services = gate(
  "PostgreSQL and Redis",
  postgres.ok && redis.ok
    ? { ok: true }
    : { ok: false, reason: [postgres, redis].flatMap((a) => (a.ok ? [] : [a.reason])).join("; ") },
);

const LEASE_S = 3;
const ADMIN = "cluster-admin-0123456789abcdef0123456789";
const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;

async function role(region: RegionProcess): Promise<string | null> {
  try {
    const response = await fetch(`${region.url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return ((await response.json()) as { role: string }).role;
  } catch {
    return null;
  }
}

/** Polls /healthz until exactly one of `regions` says it leads; returns it. */
async function oneLeader(regions: RegionProcess[], timeoutMs: number): Promise<RegionProcess> {
  const deadline = Date.now() + timeoutMs;
  let roles: (string | null)[] = [];
  while (Date.now() < deadline) {
    roles = await Promise.all(regions.map(role));
    const leaders = regions.filter((_, i) => roles[i] === "leader");
    if (leaders.length === 1 && roles.every((r) => r === "leader" || r === "follower")) return leaders[0]!;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no single leader within ${timeoutMs} ms: ${roles.join(", ")}`);
}

/** Which of `shas` the node's store lacks or holds with the wrong bytes (each file re-hashed). */
async function unverified(dataDir: string, shas: Set<string>): Promise<string[]> {
  const files = await storeFiles(dataDir);
  const bad: string[] = [];
  for (const sha of shas) {
    const file = files.get(sha);
    if (!file || (await sha256File(file)) !== sha) bad.push(sha);
  }
  return bad;
}

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
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let mirror: TestMirror;
  let regions: RegionProcess[] = [];
  let env: Record<string, string>;
  let shas: Set<string>;
  let needed = 0;

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    database = await createScratchDatabase();
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
    env = {
      DATABASE_URL: database.url,
      REDIS_URL,
      BOOT_SOURCE_URL: mirror.url,
      LEADER_LEASE: `${LEASE_S}s`,
    };
    regions = await Promise.all([0, 1, 2].map(() => startRegion({ env, adminToken: ADMIN })));
  });
  afterAll(async () => {
    for (const region of regions) {
      await region.stop();
      await removeDir(region.dataDir);
    }
    await mirror?.close();
    await database?.drop();
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
    const back = await startRegion({ env, adminToken: ADMIN, dataDir: leader.dataDir });
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
