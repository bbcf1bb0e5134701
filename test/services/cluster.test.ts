import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { gatePostgresAndRedis } from "../helpers/services";
import type { RegionProcess } from "../helpers/region";
import { startCluster, type Cluster } from "../helpers/cluster";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const services = await gatePostgresAndRedis();

const ADMIN = "cluster-admin-0123456789abcdef0123456789";
const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";

const leads = (region: RegionProcess) => region.output().includes("this region node leads");
const follows = (region: RegionProcess) => region.output().includes("another region node leads; following");

describe.skipIf(services.skip)("two region nodes on PostgreSQL and Redis", () => {
  let cluster: Cluster;
  let mirror: TestMirror;
  let leader: RegionProcess;
  let follower: RegionProcess;
  let onLeader: BootstreamClient;
  let onFollower: BootstreamClient;

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"] });
    cluster = await startCluster({
      nodes: 2,
      adminToken: ADMIN,
      redis: { db: 1 },
      env: { BOOT_SOURCE_URL: mirror.url },
    });
    const [first, second] = cluster.regions as [RegionProcess, RegionProcess];
    // Leadership is settled just after "listening": wait until one leads and the other follows.
    const settled = () => (leads(first) && follows(second)) || (leads(second) && follows(first));
    for (let i = 0; i < 200 && !settled(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    [leader, follower] = leads(first) ? [first, second] : [second, first];
    onLeader = await watch(leader.url, ADMIN);
    onFollower = await watch(follower.url, ADMIN);
  });
  afterAll(async () => {
    onLeader?.close();
    onFollower?.close();
    await cluster?.stop();
    await mirror?.close();
  });

  it("elects exactly one leader", () => {
    expect([leads(leader), leads(follower)]).toEqual([true, false]);
    expect(follower.output()).toContain("another region node leads; following");
  });

  it("runs a command sent to the follower on the leader, and both nodes' clients see the same events", async () => {
    await waitFor(
      onLeader,
      (s) => s.images.get(NOBLE)?.state === "synced",
      30_000,
      "default import on the leader",
    );
    await waitFor(
      onFollower,
      (s) => s.images.get(NOBLE)?.state === "synced",
      10_000,
      "the follower's clients see it",
    );
    const { selection } = await onFollower.command("selection:save", {
      revision: onFollower.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    });
    expect(selection.revision).toBe(2);
    await waitFor(
      onLeader,
      (s) => s.images.get(JAMMY)?.state === "synced",
      30_000,
      "jammy on the leader's client",
    );
    await waitFor(
      onFollower,
      (s) => s.images.get(JAMMY)?.state === "synced",
      10_000,
      "jammy on the follower's client",
    );
    // Both nodes number events from one counter and answer snapshots that agree.
    const [a, b] = await Promise.all([
      onLeader.command("state:get", {}),
      onFollower.command("state:get", {}),
    ]);
    expect(b.snapshot.selection).toEqual(a.snapshot.selection);
    expect(b.snapshot.images).toEqual(a.snapshot.images);
    expect(onFollower.state.seq).toBe(onLeader.state.seq);
    const { entries } = await onFollower.command("audit:list", {});
    expect(entries[0]).toMatchObject({ by: "admin", action: "selection:save" });
  });

  it("shows presence across nodes", async () => {
    const state = await waitFor(onLeader, (s) => s.users.some((u) => u.name === "admin"), 5_000, "presence");
    expect(state.users).toEqual([{ name: "admin", role: "admin" }]);
  });

  it("hands the lead to the follower when the leader dies, and keeps serving its clients", async () => {
    onLeader.close();
    await leader.kill();
    const deadline = Date.now() + 20_000;
    while (!leads(follower) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));
    expect(leads(follower)).toBe(true);
    await onFollower.command("settings:update", { autoImport: false });
    await waitFor(onFollower, (s) => s.settings.autoImport === false, 5_000, "the new leader's event");
    await onFollower.command("import:start", {});
    await waitFor(
      onFollower,
      (s) => s.import.running === false && s.import.trigger === "manual" && s.import.finishedAt !== null,
      20_000,
      "an import on the new leader",
    );
    expect(onFollower.state.images.get(JAMMY)?.state).toBe("synced");
  });
});
