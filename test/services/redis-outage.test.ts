import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import { gate, probePostgres } from "../helpers/services";
import type { RegionProcess } from "../helpers/region";
import { startCluster, type Cluster } from "../helpers/cluster";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { startOwnRedis, type OwnRedis } from "../helpers/redis-server";

const postgres = await probePostgres();
const services = gate("PostgreSQL", postgres);

const LEASE_S = 3;
const NOBLE = "ubuntu/noble/amd64";
/** How long Redis stays away: longer than the 10 s bound on reporting it, well short of a minute. */
const OUTAGE_MS = 15_000;
const TOKEN = "outage-admin-0123456789abcdef0123456789";

type Seen = { event: string; seq: number; payload: Record<string, unknown> };
type Ack = { ok: boolean; error?: { code: string; message: string }; [key: string]: unknown };

/** A raw Socket.IO client that records every numbered event and snapshot it gets, in order. */
class Recorder {
  readonly seen: Seen[] = [];
  readonly socket: Socket;
  readonly images = new Map<string, string>();
  constructor(url: string) {
    this.socket = io(url, { auth: { token: TOKEN }, transports: ["websocket"], forceNew: true });
    this.socket.onAny(
      (event: string, payload: { seq?: unknown; images?: { id: string; state: string }[] }) => {
        if (typeof payload?.seq !== "number") return;
        this.seen.push({ event, seq: payload.seq, payload });
        if (event === "snapshot")
          for (const image of payload.images ?? []) this.images.set(image.id, image.state);
        const image = (payload as { image?: { id: string; state: string } }).image;
        if (event === "image" && image) this.images.set(image.id, image.state);
      },
    );
  }
  get seq(): number {
    return this.seen.at(-1)?.seq ?? -1;
  }
  send(name: string, payload: unknown): Promise<Ack> {
    return new Promise((resolve) => this.socket.emit(name, payload, resolve));
  }
  /** Every event after the first snapshot follows the one before it; only a snapshot may jump ahead. */
  problems(from = 0): string[] {
    const problems: string[] = [];
    const list = this.seen.slice(from);
    for (let i = 1; i < list.length; i++) {
      const [before, now] = [list[i - 1]!, list[i]!];
      if (now.event === "snapshot") {
        if (now.seq < before.seq) problems.push(`snapshot ${now.seq} after ${before.seq}`);
      } else if (now.seq <= before.seq) problems.push(`stale ${now.event} ${now.seq} after ${before.seq}`);
      else if (now.seq !== before.seq + 1) problems.push(`gap: ${now.event} ${now.seq} after ${before.seq}`);
    }
    return problems;
  }
  close(): void {
    this.socket.close();
  }
}

type Health = { status: string; role: string; checks: { database: string; redis: string } };
async function health(region: RegionProcess): Promise<{ code: number; body: Health } | null> {
  try {
    const response = await fetch(`${region.url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return { code: response.status, body: (await response.json()) as Health };
  } catch {
    return null;
  }
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null> | T | null,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const last = await probe();
    if (last !== null) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe.skipIf(services.skip)("a Redis outage on a three-node cluster", () => {
  let cluster: Cluster;
  let mirror: TestMirror;
  let redis: OwnRedis;
  let regions: RegionProcess[] = [];
  const recorders: Recorder[] = [];

  beforeAll(async () => {
    if (services.mustFail) throw new Error(services.mustFail);
    redis = await startOwnRedis();
    mirror = await startMirror({ releases: ["noble"], arches: ["amd64"] });
    cluster = await startCluster({
      nodes: 3,
      adminToken: TOKEN,
      redis: { url: redis.url },
      leaseSeconds: LEASE_S,
      env: { BOOT_SOURCE_URL: mirror.url },
    });
    regions = cluster.regions;
  });
  afterAll(async () => {
    for (const recorder of recorders) recorder.close();
    await cluster?.stop();
    await mirror?.close();
    await redis?.stop();
  });

  it("degrades every node within 10 s, answers a follower's command at once without running it, and converges without a gap or a stale event when Redis returns", async () => {
    const leader = await until("one leader", 20_000, async () => {
      const roles = await Promise.all(regions.map(health));
      const leaders = regions.filter((_, i) => roles[i]?.body.role === "leader");
      return leaders.length === 1 && roles.every((r) => r?.code === 200) ? leaders[0]! : null;
    });
    const followers = regions.filter((r) => r !== leader);
    const onLeader = new Recorder(leader.url);
    const onFollowers = followers.map((f) => new Recorder(f.url));
    recorders.push(onLeader, ...onFollowers);
    // The default import, seen by every node's client.
    for (const recorder of recorders)
      await until("noble synced everywhere", 30_000, () =>
        recorder.images.get(NOBLE) === "synced" ? true : null,
      );
    await until("every client on the leader's seq", 10_000, () =>
      onFollowers.every((r) => r.seq === onLeader.seq) ? true : null,
    );

    await redis.stop();
    const stoppedAt = Date.now();
    // Every node says so: /healthz 503 naming redis, and the metric.
    for (const region of regions) {
      const answer = await until(`${region.url} degraded`, 10_000, async () => {
        const h = await health(region);
        return h?.code === 503 && h.body.checks.redis === "failing" ? h : null;
      });
      expect(answer.body.status).toBe("degraded");
    }
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    const metrics = await (await fetch(`${followers[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^bootstream_health_degraded\{check="redis"\} 1$/m);

    // A command sent to a follower is answered at once, says it did not run, and never runs later.
    const sentAt = Date.now();
    const refused = await onFollowers[0]!.send("settings:update", { bandwidthLimit: 123_456 });
    expect(Date.now() - sentAt).toBeLessThan(20_000);
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe("internal");
    expect(refused.error?.message).toMatch(/did not run/);

    // Clients whose transport drops while Redis is away: the adapter tries to save their sessions
    // for recovery and cannot. The nodes stay up (checked by every /healthz below).
    for (const region of regions) {
      const dropped = new Recorder(region.url);
      await new Promise<void>((resolve) => dropped.socket.once("connect", () => resolve()));
      dropped.socket.io.engine.close();
      dropped.close();
    }

    // The leader goes on: its own clients see the change and a whole import.
    const before = onFollowers.map((r) => r.seq);
    expect((await onLeader.send("settings:update", { autoImport: false })).ok).toBe(true);
    const mark = onLeader.seen.length;
    expect((await onLeader.send("import:start", {})).ok).toBe(true);
    await until("the import on the leader", 20_000, () =>
      onLeader.seen
        .slice(mark)
        .some((s) => s.event === "import" && (s.payload.import as { running: boolean }).running === false)
        ? true
        : null,
    );
    // The followers' clients are frozen where they were, told only that their node is degraded.
    expect(onFollowers.map((r) => r.seq)).toEqual(before);
    expect(onLeader.seq).toBeGreaterThan(before[0]!);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
    const marks = recorders.map((r) => r.seen.length);
    await redis.start();
    for (const region of regions)
      await until(`${region.url} healthy again`, 15_000, async () =>
        (await health(region))?.code === 200 ? true : null,
      );
    // Every client ends on the leader's seq: a fresh snapshot for those that missed events, no gap,
    // nothing stale.
    const { snapshot } = (await onLeader.send("state:get", {})) as unknown as { snapshot: { seq: number } };
    await until("every client on the leader's seq", 15_000, () =>
      recorders.every((r) => r.seq === snapshot.seq) ? true : null,
    );
    for (const [i, recorder] of recorders.entries()) expect(recorder.problems(), `client ${i}`).toEqual([]);
    for (const [i, recorder] of onFollowers.entries()) {
      const after = recorder.seen.slice(marks[i + 1]);
      expect(after[0]?.event, `follower client ${i}`).toBe("snapshot");
    }

    // Commands cross nodes again, and every client sees the result in order.
    const again = await onFollowers[1]!.send("settings:update", { autoImport: true });
    expect(again.ok).toBe(true);
    await until("the follower's change on every client", 10_000, () =>
      recorders.every(
        (r) =>
          r.seq === recorders[0]!.seq && r.seen.some((x) => x.event === "settings" && x.seq > snapshot.seq),
      )
        ? true
        : null,
    );
    for (const [i, recorder] of recorders.entries()) expect(recorder.problems(), `client ${i}`).toEqual([]);

    // The refused command never ran: not in the settings, not in the audit.
    const state = (await onLeader.send("state:get", {})) as unknown as {
      snapshot: { settings: { bandwidthLimit: number | null } };
    };
    expect(state.snapshot.settings.bandwidthLimit).toBeNull();
    const audit = (await onLeader.send("audit:list", {})) as unknown as { entries: { action: string }[] };
    expect(audit.entries.filter((e) => e.action === "settings:update")).toHaveLength(2);
    // Said once per outage, not once per reconnect attempt.
    for (const region of regions) {
      expect(region.output().match(/"msg":"Redis is unreachable/g)).toHaveLength(1);
      expect(region.output().match(/"msg":"Redis answers again"/g)).toHaveLength(1);
    }
  }, 120_000);
});
