import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient, ClientState } from "@bootstream/protocol/client";
import { gatePostgresAndRedis } from "../helpers/services";
import type { RegionProcess } from "../helpers/region";
import { imageFiles, startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { startBalancer, type Balancer } from "../helpers/balancer";
import { oneLeader, startCluster, unverified, type Cluster } from "../helpers/cluster";
import { waitFor, watch } from "../helpers/watch";

const services = await gatePostgresAndRedis();

const LEASE_S = 3;
const ADMIN = "racks-anywhere-admin-0123456789abcdef0123";
const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";
const RACKS = ["rack-a", "rack-b", "rack-c"];

const online = (state: ClientState) =>
  state.racks
    .filter((rack) => rack.online)
    .map((rack) => rack.name)
    .sort();

/** Every image of the selection rack-synced on all three racks, and the three of them online. */
const allRackSynced = (state: ClientState) =>
  online(state).join() === RACKS.join() &&
  [NOBLE, JAMMY].every((id) => {
    const image = state.images.get(id);
    return image?.state === "rack-synced" && image.racks.synced === 3 && image.racks.total === 3;
  });

/** The backend each rack's `/rack` socket went to: the balancer's socket.io connections, in order. */
const socketBackends = (balancer: Balancer) =>
  balancer.log.filter((c) => c.firstLine?.startsWith("GET /socket.io/")).map((c) => c.backend);

describe.skipIf(services.skip)("racks on any region node, behind a round-robin balancer", () => {
  let cluster: Cluster;
  let mirror: TestMirror;
  let balancer: Balancer;
  let leader: RegionProcess;
  let followers: RegionProcess[];
  const racks: RackProcess[] = [];
  const clients: BootstreamClient[] = [];
  let shas: Set<string>;

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    // Slow at first: the default import must not finish (and racks must not pull files through the
    // balancer) before both racks' sockets have taken their turn in the rotation.
    mirror = await startMirror({ releases: ["noble", "jammy"], arches: ["amd64"], versions: 1 }, 512);
    shas = new Set([
      ...(await imageFiles(mirror, "noble", "amd64")).keys(),
      ...(await imageFiles(mirror, "jammy", "amd64")).keys(),
    ]);
    cluster = await startCluster({
      nodes: 3,
      adminToken: ADMIN,
      redis: { db: 3 },
      leaseSeconds: LEASE_S,
      env: { BOOT_SOURCE_URL: mirror.url },
    });
    leader = await oneLeader(cluster.regions, 20_000);
    followers = cluster.regions.filter((r) => r !== leader);
    // The leader first: the first rack lands on it, the second on a follower.
    balancer = await startBalancer([leader.url, ...followers.map((f) => f.url)]);
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    for (const rack of racks) await rack.stop();
    await balancer?.close();
    await cluster?.stop();
    await mirror?.close();
  });

  it("two racks behind the balancer (one certainly on a follower) and one pointed at a follower end rack-synced; every store verified", async () => {
    const onLeader = await watch(leader.url, ADMIN);
    const onFollower = await watch(followers[1]!.url, ADMIN);
    clients.push(onLeader, onFollower);

    racks.push(await startRack({ regionUrl: balancer.url, name: "rack-a" }));
    await waitFor(onLeader, (s) => online(s).includes("rack-a"), 30_000, "rack-a online");
    const rackA = socketBackends(balancer).at(-1);
    racks.push(await startRack({ regionUrl: balancer.url, name: "rack-b" }));
    await waitFor(onLeader, (s) => online(s).includes("rack-b"), 30_000, "rack-b online");
    const rackB = socketBackends(balancer).at(-1);
    // Round-robin: consecutive connections go to different nodes, so at most one is on the leader.
    expect(rackA).toBe(0);
    // Backend 1 is a follower: rack-b's hello, reports and bye went to the leader through Redis.
    expect(rackB).toBe(1);
    // And one straight at the other follower, no balancer.
    racks.push(await startRack({ regionUrl: followers[1]!.url, name: "rack-c" }));
    await waitFor(onLeader, (s) => online(s).join() === RACKS.join(), 30_000, "three racks online");
    // The follower's dashboard shows the racks the leader registered.
    await waitFor(
      onFollower,
      (s) => online(s).join() === RACKS.join(),
      10_000,
      "racks on a follower's dashboard",
    );

    mirror.proxy.bytesPerSecond = Infinity;
    await onLeader.command("selection:save", {
      revision: onLeader.state.selection.revision,
      items: [
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
      ],
    });
    await waitFor(onLeader, allRackSynced, 120_000, "both images rack-synced on three racks (leader)");
    await waitFor(onFollower, allRackSynced, 10_000, "both images rack-synced on three racks (follower)");

    // Every node's store and every rack's holds each file, re-hashed.
    for (const holder of [...cluster.regions, ...racks])
      await expect.poll(() => unverified(holder.dataDir, shas), { timeout: 30_000 }).toEqual([]);
    // The follower racks' files came through the balancer from any node, and only verified files.
    expect(balancer.log.some((c) => c.firstLine?.startsWith("GET /files/") && c.backend !== 0)).toBe(true);
  }, 240_000);

  it("rack rows survive a leader change: after kill -9 of the leader the new one shows the racks online and every image rack-synced", async () => {
    await leader.kill();
    const next = await oneLeader(followers, (LEASE_S + 5) * 1000);
    const onNext = await watch(next.url, ADMIN);
    clients.push(onNext);
    // rack-b and rack-c never left their followers; rack-a's socket died with the leader and comes
    // back through the balancer (to a living node, after at most a try on the dead one).
    const state = await waitFor(onNext, allRackSynced, 90_000, "rack-synced under the new leader");
    expect(state.racks.map((r) => r.name).sort()).toEqual(RACKS);
    for (const rack of racks) expect(rack.child.exitCode).toBeNull();
  }, 180_000);
});
