import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { io } from "socket.io-client";
import type { Snapshot } from "@bootstream/protocol";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { all, gate, probeRedis } from "../helpers/services";
import type { RegionProcess } from "../helpers/region";
import { oneLeader, startCluster, type Cluster } from "../helpers/cluster";
import { startRack, type RackProcess } from "../helpers/rack";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { ownPostgresAvailable, startOwnPostgres, type OwnPostgres } from "../helpers/own-postgres";
import { waitFor, watch } from "../helpers/watch";

const redis = await probeRedis();
const binaries = ownPostgresAvailable();
const services = gate("Redis and PostgreSQL server binaries", all(redis, binaries));

const LEASE_S = 3;
const TOKEN = "faults-admin-0123456789abcdef0123456789";
const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";

/** The first snapshot a new connection gets. */
function firstSnapshot(url: string): Promise<Snapshot & { seq: number }> {
  const socket = io(url, {
    auth: { token: TOKEN },
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  return new Promise((resolve, reject) => {
    socket.once("snapshot", (snapshot: Snapshot & { seq: number }) => {
      socket.close();
      resolve(snapshot);
    });
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
}

async function manifestGeneration(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ g: string }>("SELECT manifest_generation AS g FROM leader_lease");
    return Number(rows[0]!.g);
  } finally {
    await client.end();
  }
}

type RunRow = { trigger: string; startedAt: string; finishedAt: string | null; error: string | null };
async function importRuns(url: string): Promise<RunRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<RunRow>(
      `SELECT trigger, started_at AS "startedAt", finished_at AS "finishedAt", error FROM import_run ORDER BY id`,
    );
    return rows;
  } finally {
    await client.end();
  }
}

describe.skipIf(services.skip)("a cluster that outlives PostgreSQL restarts and late nodes", () => {
  let postgres: OwnPostgres;
  let mirror: TestMirror;
  let cluster: Cluster;
  let regions: RegionProcess[] = [];
  const racks: RackProcess[] = [];
  const clients: BootstreamClient[] = [];

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    postgres = await startOwnPostgres();
    // Slow enough that the import is still running when the late node starts and PostgreSQL restarts.
    mirror = await startMirror(
      { releases: ["jammy", "noble"], arches: ["amd64"], payloadSize: 768 * 1024, versions: 1 },
      400 * 1024,
    );
    cluster = await startCluster({
      nodes: 3,
      adminToken: TOKEN,
      databaseUrl: postgres.url,
      redis: { db: 5 },
      leaseSeconds: LEASE_S,
      env: { BOOT_SOURCE_URL: mirror.url, DOWNLOAD_CONCURRENCY: "1" },
      // Nothing imports until the test says so: auto-import is off before the other nodes start.
      afterFirst: async (first) => {
        const setup = await watch(first.url, TOKEN);
        try {
          await setup.command("settings:update", { autoImport: false });
        } finally {
          setup.close();
        }
      },
    });
    regions = cluster.regions;
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    for (const rack of racks) await rack.stop();
    if (process.env.DUMP_LOGS)
      for (const [i, region] of regions.entries())
        (await import("node:fs")).writeFileSync(`/tmp/faults-region-${i}.log`, region.output());
    await cluster?.stop();
    await mirror?.close();
    await postgres?.stop();
  });

  it("shows a node started mid-import the whole current state in its first snapshot", async () => {
    const leader = await oneLeader(regions, 20_000);
    racks.push(await startRack({ regionUrl: leader.url, name: "rack-1" }));
    const onLeader = await watch(leader.url, TOKEN);
    clients.push(onLeader);
    await waitFor(
      onLeader,
      (s) => s.racks.some((r) => r.name === "rack-1" && r.online),
      20_000,
      "rack online",
    );
    const { selection } = await onLeader.command("selection:save", {
      revision: onLeader.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    });
    // Saving the selection starts its import: the one that runs when PostgreSQL goes away. (A second
    // request queued behind it would start, fail its first write and be lost: not covered here.)
    expect(selection.items).toHaveLength(2);
    await waitFor(
      onLeader,
      (s) => s.import.running && [...s.images.values()].some((i) => i.state === "downloading"),
      20_000,
      "an import under way",
    );

    const late = await cluster.start();
    regions.push(late);
    const snapshot = await firstSnapshot(late.url);
    const { snapshot: now } = await onLeader.command("state:get", {});
    expect(snapshot.import).toEqual(now.import);
    expect(snapshot.import.running).toBe(true);
    expect(snapshot.racks.map((r) => [r.name, r.online])).toEqual([["rack-1", true]]);
    expect(snapshot.selection).toEqual(now.selection);
    expect(snapshot.images.map((i) => i.id).sort()).toEqual([JAMMY, NOBLE]);
    for (const image of snapshot.images) {
      expect(image.racks.total, image.id).toBe(1);
      expect(["queued", "downloading", "synced", "rack-synced"]).toContain(image.state);
    }
    expect(snapshot.images.some((i) => i.state !== "queued")).toBe(true);
    expect(snapshot.seq).toBeGreaterThan(0);
  });

  // The leader's own writes meet the outage first (ECONNREFUSED, "Connection terminated
  // unexpectedly", 57P01) before its lease lapses: the importer takes that as a step-down (the run is
  // left unfinished, never failed) and the node stops leading at once (import/importer.ts
  // databaseLost, cluster/leadership.ts lost). Without it the run ended "failed" and never ran again.
  it("rides out a PostgreSQL restart mid-import: every node stays up, one leads, the import completes and manifest generations keep growing", async () => {
    const leader = await oneLeader(regions, 20_000);
    const onLeader = await watch(leader.url, TOKEN);
    clients.push(onLeader);
    await waitFor(onLeader, (s) => s.import.running, 5_000, "the import still running");
    const before = await manifestGeneration(postgres.url);
    const restartedAt = new Date().toISOString();
    // Down for twice the lease: the leader cannot renew, steps down and stops the import.
    await postgres.restart(2 * LEASE_S * 1000);
    await expect
      .poll(() => regions.some((r) => r.output().includes("this region node stops leading")), {
        timeout: 5_000,
      })
      .toBe(true);
    // Every node is still there and one of them leads.
    for (const region of regions) expect(region.child.exitCode, region.output().slice(-2000)).toBeNull();
    const next = await oneLeader(regions, 30_000);
    const onNext = await watch(next.url, TOKEN);
    clients.push(onNext);
    await waitFor(
      onNext,
      (s) =>
        !s.import.running &&
        s.images.get(NOBLE)?.state === "rack-synced" &&
        s.images.get(JAMMY)?.state === "rack-synced",
      90_000,
      "the interrupted import finished and the rack synced",
    );
    expect(onNext.state.import.error).toBeNull();
    // The run the outage interrupted was left unfinished (not failed) and resumed by the next leader:
    // the database holds it as interrupted, and a later run that completed.
    const runs = await importRuns(postgres.url);
    const cut = runs.findIndex((run) => run.startedAt < restartedAt && run.error?.startsWith("interrupted"));
    expect(cut, JSON.stringify(runs)).toBeGreaterThanOrEqual(0);
    expect(runs.slice(0, cut + 1).filter((run) => run.error && !run.error.startsWith("interrupted"))).toEqual(
      [],
    );
    const after = runs.slice(cut + 1);
    expect(after.length, JSON.stringify(runs)).toBeGreaterThan(0);
    expect(after.at(-1)).toMatchObject({ trigger: "selection", error: null });
    expect(after.at(-1)!.finishedAt).not.toBeNull();
    for (const region of regions) {
      expect(region.child.exitCode).toBeNull();
      expect(region.output()).not.toContain("name already taken");
      // One import schedule per term led: leading starts it once, stepping down stops it.
      const lines = region.output().split("\n");
      const scheduled = (job: string) =>
        lines.filter((l) => l.includes('"msg":"scheduled"') && l.includes(`"job":"${job}"`)).length;
      expect(scheduled("region-verify")).toBe(scheduled("region-import"));
      expect(scheduled("region-import")).toBe(
        lines.filter((l) => l.includes('"msg":"this region node leads')).length,
      );
    }
    expect(await oneLeader(regions, 10_000)).toBe(next);
    // The generation counter lives in the database: whoever leads now counts on from the old one.
    expect(before).toBeGreaterThan(0);
    expect(await manifestGeneration(postgres.url)).toBeGreaterThan(before);
  }, 150_000);
});
