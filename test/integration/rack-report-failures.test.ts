import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RACK_NAMESPACE, type RackReport } from "@bootstream/protocol";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { removeDir } from "../helpers/region";
import { regionConfig } from "../helpers/in-process";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

// The region in-process, so the test can make its own SQLite connection refuse writes (a real
// SQLITE_READONLY on every write, as a database that is down refuses them); the racks are real
// Socket.IO clients of /rack speaking the rack protocol.

const TOKEN = "rack-failures-admin-token-0123456789abcdef";
const SECRET = "rack-failures-rack-secret-0123456789abcdef";
const NOBLE = "ubuntu/noble/amd64";

type Line = { level: number; msg: string; [field: string]: unknown };

function rackSocket(url: string, name: string): Promise<Socket> {
  const socket = io(url + RACK_NAMESPACE, {
    auth: { name, secret: SECRET },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/** A report whose inventory differs each time (so the region has something to write). */
function report(n: number): RackReport {
  return {
    inventory: [n.toString(16).padStart(64, "0")],
    generation: 0,
    syncing: true,
    progress: { bytesDone: n, bytesTotal: 100 },
    lastSync: null,
    error: null,
  };
}

function send(socket: Socket, body: RackReport): Promise<{ ok: boolean; error?: string }> {
  return socket.timeout(20_000).emitWithAck("report", body) as Promise<{ ok: boolean; error?: string }>;
}

describe("rack reports while the database refuses writes", () => {
  const lines: Line[] = [];
  let mirror: TestMirror;
  let dataDir: string;
  let region: RegionHandle;
  let client: BootstreamClient;
  const racks: Socket[] = [];

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["noble"], arches: ["amd64"], versions: 1 });
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-rack-failures-"));
    const log = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
    );
    region = await startRegion(
      regionConfig(dataDir, {
        adminToken: TOKEN,
        rackSecret: SECRET,
        bootSourceUrl: mirror.url,
        // Longer than the test: the one line of counts is the one the recovery flushes.
        failureLogEveryMs: 10 * 60_000,
        logLevel: "info",
      }),
      log,
    );
    client = await watch(region.url, TOKEN);
    // A fresh region imports noble at once; let it finish before the database goes away.
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "noble imported");
    for (const name of ["rack-a", "rack-b"]) racks.push(await rackSocket(region.url, name));
    await waitFor(client, (s) => s.racks.filter((r) => r.online).length === 2, 10_000, "both racks online");
  });
  afterAll(async () => {
    for (const socket of racks) socket.close();
    client?.close();
    await region?.close();
    await mirror?.close();
    if (dataDir) await removeDir(dataDir);
  });

  it("logs the first failure, then one line of counts, then that it recovered", async () => {
    const db = region.context.db;
    const [a, b] = racks as [Socket, Socket];
    const seen = lines.length;
    await db.source.query("PRAGMA query_only = 1");
    try {
      // Each rack reports five times (as a syncing rack does, twice a second): every one refused.
      for (let n = 1; n <= 5; n++) {
        expect(await send(a, report(n))).toEqual({ ok: false, error: "internal" });
        expect(await send(b, report(100 + n))).toEqual({ ok: false, error: "internal" });
      }
    } finally {
      await db.source.query("PRAGMA query_only = 0");
    }
    const during = () => lines.slice(seen).filter((l) => /^rack report/.test(l.msg));
    // One line for the first failure, with its error; nothing for the nine after it yet.
    expect(during().map((l) => l.msg)).toEqual(["rack report failed"]);
    expect(during()[0]).toMatchObject({
      rack: "rack-a",
      err: { message: expect.stringMatching(/readonly/) },
    });

    // The database takes writes again: rack-a's report goes through, rack-b still failed last.
    expect(await send(a, report(6))).toEqual({ ok: true });
    expect(during()).toHaveLength(1);
    // rack-b's too: the counts of the window so far, then the recovery.
    expect(await send(b, report(106))).toEqual({ ok: true });
    expect(during().map((l) => l.msg)).toEqual([
      "rack report failed",
      expect.stringMatching(/^rack report failed 9 more time\(s\) in [\d.]+ s$/),
      expect.stringMatching(/^rack report recovered after 10 failure\(s\) in \d+ s$/),
    ]);
    expect(during()[1]).toMatchObject({
      total: 9,
      racks: ["rack-a", "rack-b"],
      err: expect.stringMatching(/readonly/),
    });
    expect(during()[2]).toMatchObject({ failures: 10 });
  });
});
