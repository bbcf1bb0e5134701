import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RACK_NAMESPACE, type RackReport } from "@bootstream/protocol";
import type { BootstreamClient, ClientChange } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { createLogger } from "../../apps/server/src/log";
import { createScratchDatabase, gate, probePostgres } from "../helpers/services";
import { removeDir } from "../helpers/region";
import { regionConfig } from "../helpers/in-process";
import { waitFor, watch } from "../helpers/watch";

// One region node in-process on its own PostgreSQL database, so the test can reach the node's rack
// registry and event bus after it stepped down; its client and its rack are real sockets. The lease
// is taken from it in the database (as a node that woke up from a pause finds it), so it steps down
// on its next renewal, and the test then makes the old term's memory act.

const postgres = gate("PostgreSQL", await probePostgres());
const TOKEN = "stepdown-fence-admin-token-0123456789abcdef";
const SECRET = "stepdown-fence-rack-secret-0123456789abcdef";

const progress = (bytesDone: number): RackReport => ({
  inventory: [],
  generation: 0,
  syncing: true,
  progress: { bytesDone, bytesTotal: 1000 },
  lastSync: null,
  error: null,
});

async function connectRack(url: string): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    const socket = io(url + RACK_NAMESPACE, {
      auth: { name: "rack-a", secret: SECRET },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    const error = await new Promise<Error | null>((resolve) => {
      socket.once("connect", () => resolve(null));
      socket.once("connect_error", resolve);
    });
    if (!error) return socket;
    socket.close();
    if (error.message !== "not-leader" || attempt >= 100) throw error;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(postgres.skip)("a node that steps down sends nothing from its old term's memory", () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let dataDir: string;
  let region: RegionHandle;
  let client: BootstreamClient;
  let rack: Socket;

  beforeAll(async () => {
    if (postgres.mustFail) throw new Error(postgres.mustFail);
    database = await createScratchDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-fence-"));
    region = await startRegion(
      regionConfig(dataDir, {
        databaseUrl: database.url,
        adminToken: TOKEN,
        rackSecret: SECRET,
        leaderLeaseMs: 3000,
      }),
      createLogger("silent", "stepdown-fence"),
    );
    client = await watch(region.url, TOKEN);
    await waitFor(client, (s) => s.health?.role === "leader", 30_000, "the node leads");
    // The rack namespace opens once the engine has started (just after the role is announced).
    rack = await connectRack(region.url);
    await waitFor(
      client,
      (s) => s.racks.some((r) => r.name === "rack-a" && r.online),
      10_000,
      "rack-a online",
    );
    // While it leads, a rack's progress is announced (memory only, no write).
    expect(await rack.timeout(10_000).emitWithAck("report", progress(100))).toEqual({ ok: true });
    await waitFor(client, (s) => s.racks[0]?.progress?.bytesDone === 100, 10_000, "progress 100");
  });
  afterAll(async () => {
    rack?.close();
    client?.close();
    await region?.close();
    if (dataDir) await removeDir(dataDir);
    await database?.drop();
  });

  it("drops the events a stale rack report and a rack-count refresh would send", async () => {
    // Another node takes the lease: this one's next renewal fails and it steps down.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(
        "UPDATE leader_lease SET holder = 'another-node', epoch = epoch + 1, expires_at = now() + interval '1 hour'",
      );
    } finally {
      await admin.end();
    }
    await waitFor(client, (s) => s.health?.role === "follower", 30_000, "the node follows");

    const changes: ClientChange[] = [];
    const off = client.subscribe((change) => changes.push(change));
    const { bus, racks, images } = region.context;
    const seq = bus.currentSeq;
    const told = bus.live.racks.get("rack-a");
    try {
      // The old term's registry still holds rack-a: a report queued before the step-down is
      // applied from that memory (progress only: no write, so no write fence stops it) ...
      await racks.report("rack-a", progress(900));
      // ... and its rack counts are refreshed, as after an inventory change.
      images.refreshChanged();
      // Nothing was numbered, folded or sent.
      expect(bus.currentSeq).toBe(seq);
      expect(bus.live.racks.get("rack-a")).toEqual(told);
      // An event sent before this command's answer would reach the client before it (one socket).
      await client.command("state:get", {});
    } finally {
      off();
    }
    expect(changes.filter((change) => change === "rack" || change === "image")).toEqual([]);
    expect(client.state.racks[0]?.progress?.bytesDone).toBe(100);
  });
});
