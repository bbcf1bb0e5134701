import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import pg from "pg";
import { gatePostgresAndRedis } from "../helpers/services";
import { oneLeader, startCluster, type Cluster } from "../helpers/cluster";
import type { RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const services = await gatePostgresAndRedis();

const LEASE_S = 3;
const ADMIN = "cluster-admin-0123456789abcdef0123456789";
const NOBLE = "ubuntu/noble/amd64";

async function lease(url: string): Promise<{ holder: string; epoch: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ holder: string; epoch: string }>(
      "SELECT holder, epoch FROM leader_lease WHERE id = 1",
    );
    return { holder: rows[0]!.holder, epoch: Number(rows[0]!.epoch) };
  } finally {
    await client.end();
  }
}

describe.skipIf(services.skip)("three region nodes with a leader lease", () => {
  let cluster: Cluster;
  let mirror: TestMirror;
  let regions: RegionProcess[] = [];
  let database: string;

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    mirror = await startMirror({ releases: ["noble"], arches: ["amd64"] });
    cluster = await startCluster({
      nodes: 3,
      adminToken: ADMIN,
      redis: { db: 2 },
      leaseSeconds: LEASE_S,
      env: { BOOT_SOURCE_URL: mirror.url },
    });
    regions = cluster.regions;
    database = cluster.databaseUrl;
  });
  afterAll(async () => {
    await cluster?.stop();
    await mirror?.close();
  });

  it("elects one leader, which says so on /healthz and /metrics, and the others say once that they follow", async () => {
    const leader = await oneLeader(regions, 20_000);
    const metrics = await (await fetch(`${leader.url}/metrics`)).text();
    expect(metrics).toMatch(/^bootstream_leader 1$/m);
    const follower = regions.find((r) => r !== leader)!;
    expect(await (await fetch(`${follower.url}/metrics`)).text()).toMatch(/^bootstream_leader 0$/m);
    // Three lease periods later, still one line about following: role changes are logged once.
    await new Promise((resolve) => setTimeout(resolve, LEASE_S * 1000));
    expect(follower.output().match(/another region node leads; following/g)).toHaveLength(1);
    expect(leader.output().match(/this region node leads/g)).toHaveLength(1);
  });

  it("replaces a paused leader within the lease, and the old one writes nothing when it wakes", async () => {
    const leader = await oneLeader(regions, 20_000);
    const others = regions.filter((r) => r !== leader);
    const onLeader = await watch(leader.url, ADMIN);
    const onFollower = await watch(others[0]!.url, ADMIN);
    await waitFor(onFollower, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "default import");
    const before = await lease(database);
    try {
      leader.child.kill("SIGSTOP");
      // The signal is asynchronous: wait until the kernel says the process is stopped.
      await expect
        .poll(() => readFileSync(`/proc/${leader.child.pid}/stat`, "utf8").split(") ")[1]?.[0], {
          timeout: 5000,
        })
        .toBe("T");
      // Sent while it is paused: it reaches the process only when it wakes, long after its lease.
      const late = onLeader.command("settings:update", { autoImport: false }, { timeoutMs: 60_000 });
      const stoppedAt = Date.now();
      const next = await oneLeader(others, (LEASE_S + 5) * 1000);
      expect(Date.now() - stoppedAt).toBeLessThan((LEASE_S + 5) * 1000);
      const taken = await lease(database);
      expect(taken.epoch).toBeGreaterThan(before.epoch);
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, 2 * LEASE_S * 1000 - (Date.now() - stoppedAt))),
      );
      leader.child.kill("SIGCONT");
      const answer = await late.then(
        () => "ran",
        (error: Error) => error.message,
      );
      // Woken, the old leader either refuses it (its lease is gone) or, having already stepped
      // down, hands it to the new leader like any follower: it runs once, never on the old term.
      if (answer !== "ran") expect(answer).toMatch(/did not run|try again/);
      await expect
        .poll(() => leader.output(), { timeout: 10_000 })
        .toContain("this region node stops leading");
      // Nothing of the old term reached the database: the setting and the audit are unchanged.
      const onNext = await watch(next.url, ADMIN);
      const { snapshot } = await onNext.command("state:get", {});
      const { entries } = await onNext.command("audit:list", {});
      const updates = entries.filter((e) => e.action === "settings:update");
      expect(snapshot.settings.autoImport).toBe(answer !== "ran");
      expect(updates).toHaveLength(answer === "ran" ? 1 : 0);
      expect((await lease(database)).epoch).toBe(taken.epoch);
      // The old leader is a follower now; one leader in the cluster.
      expect(await oneLeader(regions, 10_000)).toBe(next);
      onNext.close();
    } finally {
      if (leader.child.signalCode === null) leader.child.kill("SIGCONT");
      onLeader.close();
      onFollower.close();
    }
  });

  it("hands over at once on a clean stop, and takes over within the lease after kill -9", async () => {
    const leader = await oneLeader(regions, 20_000);
    const others = regions.filter((r) => r !== leader);
    await leader.kill();
    const killedAt = Date.now();
    const next = await oneLeader(others, (LEASE_S + 5) * 1000);
    expect(Date.now() - killedAt).toBeLessThan((LEASE_S + 5) * 1000);
    const onNext = await watch(next.url, ADMIN);
    await onNext.command("import:start", {});
    await waitFor(
      onNext,
      (s) => !s.import.running && s.import.trigger === "manual" && s.import.finishedAt !== null,
      30_000,
      "an import on the new leader",
    );
    expect(onNext.state.images.get(NOBLE)?.state).toBe("synced");
    onNext.close();
    const last = others.find((r) => r !== next)!;
    expect(await next.stop()).toBe(0);
    // A clean stop lets the lease go: the last node leads well within the lease.
    await oneLeader([last], LEASE_S * 1000);
  });
});
