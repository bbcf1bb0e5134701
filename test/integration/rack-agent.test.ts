import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { statusText } from "@bootstream/images/present";
import type { Manifest, RackReport } from "@bootstream/protocol";
import type { BootstreamClient, ClientState } from "@bootstream/protocol/client";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ThrottleProxy } from "../../apps/server/src/demo/throttle-proxy";
import { RackAgent } from "../../apps/server/src/rack/agent";
import { imageShas, startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { BIN, TEST_RACK_SECRET, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { corruptStoreFiles, sha256File, storeFiles } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

// The rack agent's own behaviour, driven by a real region importing from a real mirror, with real
// `bootstream rack` processes. What racks.test.ts covers already (two racks reaching rack-synced, a
// wrong secret, /files auth, kill -9 resume, version switch, deselect, region crash, rack:remove) is
// not repeated here. The one thing the region never does, send a broken manifest, is tested against
// apps/server/src/rack/hostile-region.ts in agent.test.ts.

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";
const MiB = 1024 * 1024;
/** A schedule that does not fire during a test: syncs come only from what the test does. */
const NEVER = "0 0 1 1 *";

/** `time` is ISO 8601 UTC (src/log.ts), so lines sort by it as strings. */
type LogLine = { msg: string; time: string; [key: string]: unknown };
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
type Published = Manifest & { publishedAt: string };

/**
 * A TCP hop between one rack and the region that reads the rack protocol off the wire (WebSocket
 * frames, then Socket.IO packets) so a test can see what the agent told the region and how the
 * region answered. It changes nothing in transit; it can only cut the link, as a network would.
 */
class RackWire {
  /** Every `report` the rack sent, with the connection it came on and its ack id. */
  readonly reports: { at: number; link: number; id: number | null; report: RackReport }[] = [];
  /** The region's answer to each report, by `${link}:${ackId}`. */
  readonly acks = new Map<string, { ok: boolean; error?: string }>();
  /** Events the region sent the rack (`manifest`, `sync:now`). */
  readonly events: { at: number; link: number; name: string }[] = [];
  private readonly sockets = new Set<Socket>();
  private links = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<RackWire> {
    const upstream = new URL(target);
    const ref: { wire: RackWire | null } = { wire: null };
    const server = createServer((client) => {
      const wire = ref.wire!;
      const remote = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
      wire.sockets.add(client).add(remote);
      const drop = () => {
        client.destroy();
        remote.destroy();
        wire.sockets.delete(client);
        wire.sockets.delete(remote);
      };
      client.on("error", drop).on("close", drop);
      remote.on("error", drop).on("close", drop);
      const link = ++wire.links;
      const fromRack = new FrameReader((text) => wire.heardFromRack(link, text));
      const fromRegion = new FrameReader((text) => wire.heardFromRegion(link, text));
      client.on("data", (chunk: Buffer) => fromRack.push(chunk));
      remote.on("data", (chunk: Buffer) => fromRegion.push(chunk));
      client.pipe(remote);
      remote.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    ref.wire = new RackWire(server, `http://127.0.0.1:${port}`);
    return ref.wire;
  }

  /** Drops every open connection, as a network failure would; new ones get through. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private heardFromRack(link: number, text: string): void {
    const packet = socketIoPacket(text);
    if (packet?.kind === "event" && packet.data[0] === "report") {
      this.reports.push({ at: Date.now(), link, id: packet.id, report: packet.data[1] as RackReport });
    }
  }

  private heardFromRegion(link: number, text: string): void {
    const packet = socketIoPacket(text);
    if (packet?.kind === "ack" && packet.id !== null) {
      this.acks.set(`${link}:${packet.id}`, packet.data[0] as { ok: boolean });
    } else if (packet?.kind === "event") {
      this.events.push({ at: Date.now(), link, name: String(packet.data[0]) });
    }
  }
}

/**
 * One direction of one TCP connection: skips the HTTP upgrade, then hands over each complete text
 * WebSocket message. Connections that are not a Socket.IO WebSocket (GET /files) are ignored.
 */
class FrameReader {
  private buffer = Buffer.alloc(0);
  private mode: "head" | "frames" | "ignore" = "head";
  private parts: Buffer[] = [];

  constructor(private readonly onText: (text: string) => void) {}

  push(chunk: Buffer): void {
    if (this.mode === "ignore") return;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.mode === "head") {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const firstLine = this.buffer.subarray(0, this.buffer.indexOf("\r\n")).toString("latin1");
      const upgrade = /^GET \/socket\.io\/.*transport=websocket/.test(firstLine) || / 101 /.test(firstLine);
      this.mode = upgrade ? "frames" : "ignore";
      this.buffer = this.buffer.subarray(end + 4);
      if (!upgrade) return;
    }
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (b.length < at + length) return;
      const payload = Buffer.from(b.subarray(at, at + length));
      if (masked) for (let i = 0; i < length; i++) payload[i]! ^= b[maskAt + (i % 4)]!;
      this.buffer = b.subarray(at + length);
      if (opcode >= 8) continue; // close, ping, pong
      this.parts.push(payload);
      if (!fin) continue;
      const text = Buffer.concat(this.parts).toString("utf8");
      this.parts = [];
      if (opcode === 1 || opcode === 0) this.onText(text);
    }
  }
}

/** An Engine.IO message carrying a Socket.IO event or ack, e.g. `42/rack,3["report",{...}]`. */
function socketIoPacket(text: string): { kind: "event" | "ack"; id: number | null; data: unknown[] } | null {
  const match = /^4([23])(?:\/[^,]*,)?(\d*)(\[[\s\S]*\])$/.exec(text);
  if (!match) return null;
  return {
    kind: match[1] === "2" ? "event" : "ack",
    id: match[2] ? Number(match[2]) : null,
    data: JSON.parse(match[3]!) as unknown[],
  };
}

/** The JSON lines a rack printed; a line still being written is left for the next look. */
function logsOf(rack: RackProcess): LogLine[] {
  const output = rack.output();
  return output
    .slice(0, output.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
}

const logged = (rack: RackProcess, msg: string) => logsOf(rack).filter((line) => line.msg === msg);

/** Polls `probe` until it returns something truthy; fails after `timeoutMs` with what was seen. */
async function until<T>(
  probe: () => T | Promise<T>,
  what: string,
  context: () => string = () => "",
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const tail = (rack: RackProcess) => () =>
  logsOf(rack)
    .slice(-40)
    .map((line) => JSON.stringify(line))
    .join("\n");

async function exists(file: string): Promise<boolean> {
  return fsp.lstat(file).then(
    () => true,
    () => false,
  );
}

/** The manifest the rack published (current/manifest.json), or null when nothing is published. */
async function currentManifest(dataDir: string): Promise<Published | null> {
  try {
    return JSON.parse(
      await fsp.readFile(path.join(dataDir, "current", "manifest.json"), "utf8"),
    ) as Published;
  } catch {
    return null;
  }
}

/** Every file under current/images, as { path below images/ → sha256 of its bytes }. */
async function publishedFiles(dataDir: string): Promise<Map<string, string>> {
  const root = path.join(dataDir, "current", "images");
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else files.set(path.relative(root, full), await sha256File(full));
    }
  };
  await walk(root);
  return files;
}

/** What current/images must hold for a manifest: { image/version/name → sha256 }. */
function filesNamedBy(manifest: Manifest): Map<string, string> {
  return new Map(
    manifest.images.flatMap((image) =>
      image.files.map((file) => [`${image.id}/${image.version}/${file.name}`, file.sha256] as const),
    ),
  );
}

const shasOf = (manifest: Manifest) =>
  [...new Set(manifest.images.flatMap((image) => image.files.map((file) => file.sha256)))].sort();

const partialFile = (dataDir: string, sha: string) => path.join(dataDir, "partial", `${sha}.partial`);

async function partialBytes(dataDir: string, sha: string): Promise<number> {
  return fsp.stat(partialFile(dataDir, sha)).then(
    (stat) => stat.size,
    () => 0,
  );
}

/** Runs `bootstream rack` to its end with only the given environment. */
function runRackCommand(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BIN, "rack", ...args], {
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, output })));
}

describe("rack agent against the real region", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;
  /** Run after each test, last registered first: racks stop before their links and directories go. */
  let cleanup: (() => Promise<unknown>)[] = [];
  let noble: { shas: Set<string>; largest: string; smallest: string };

  const regionFile = (sha: string) => path.join(region.dataDir, "store", sha.slice(0, 2), sha);
  const rackState = (state: ClientState, name: string) => state.racks.find((rack) => rack.name === name);

  /** A rack whose link to the region runs through a throttle and a wire the test can read. */
  async function linkedRack(
    name: string,
    options: { bytesPerSecond?: number; env?: Record<string, string>; dataDir?: string } = {},
  ) {
    const throttle = await ThrottleProxy.start(region.url + "/", options.bytesPerSecond ?? Infinity);
    cleanup.push(() => throttle.close());
    const wire = await RackWire.start(throttle.url);
    cleanup.push(() => wire.close());
    const dataDir = options.dataDir ?? (await fsp.mkdtemp(path.join(tmpdir(), `bootstream-${name}-`)));
    if (!options.dataDir) cleanup.push(() => removeDir(dataDir));
    const start = async () => {
      const rack = await startRack({
        regionUrl: wire.url,
        name,
        dataDir,
        env: { RACK_SYNC_SCHEDULE: NEVER, ...options.env },
      });
      cleanup.push(() => rack.kill());
      return rack;
    };
    return { rack: await start(), wire, throttle, dataDir, restart: start };
  }

  /** Waits until the rack has published and the region counts every selected image on it. */
  async function synced(rack: RackProcess, name: string): Promise<Published> {
    await waitFor(
      client,
      (s) => {
        const state = rackState(s, name);
        return state?.online === true && state.imagesTotal > 0 && state.imagesSynced === state.imagesTotal;
      },
      30_000,
      `${name} holding every image`,
    );
    const manifest = await until(() => currentManifest(rack.dataDir), "current/manifest.json", tail(rack));
    // The log line is written before the report that told the region, but may reach us after it.
    await until(
      () =>
        logged(rack, "sync finished").some(
          (l) => l["result"] === "published" && l["generation"] === manifest.generation,
        ),
      "the publishing sync in the rack's log",
      tail(rack),
    );
    return manifest;
  }

  /** Replaces a file in the region's store in one rename, as the region's own installs do. */
  async function replaceRegionFile(sha: string, bytes: Buffer): Promise<void> {
    await fsp.writeFile(`${regionFile(sha)}.test-tmp`, bytes);
    await fsp.rename(`${regionFile(sha)}.test-tmp`, regionFile(sha));
  }

  /** Waits until no import runs: its end sends sync:now to every rack, which a test must not get unasked. */
  async function importIdle(): Promise<void> {
    await waitFor(
      client,
      (s) => !s.import.running && s.import.finishedAt !== null,
      30_000,
      "no import running",
    );
  }

  async function importOnce(): Promise<void> {
    const before = client.state.import.finishedAt;
    await client.command("import:start", {});
    await waitFor(
      client,
      (s) => !s.import.running && s.import.finishedAt !== before,
      20_000,
      "the import to finish",
    );
  }

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["jammy", "noble"],
      arches: ["amd64"],
      sizes: { squashfs: 2 * MiB },
    });
    // No hourly import: its sync:now would reach the racks in the middle of a test.
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url, IMPORT_SCHEDULE: NEVER } });
    client = await watch(region.url, region.adminToken);
    await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "noble imported");
    await importIdle();
    const shas = await imageShas(mirror, "noble", "amd64");
    const sizes = await Promise.all(
      [...shas].map(async (sha) => [sha, (await fsp.stat(regionFile(sha))).size] as const),
    );
    sizes.sort((a, b) => a[1] - b[1]);
    noble = { shas, smallest: sizes[0]![0], largest: sizes.at(-1)![0] };
  });

  afterEach(async () => {
    const steps = cleanup.reverse();
    cleanup = [];
    const errors: unknown[] = [];
    for (const step of steps) await step().catch((error: unknown) => errors.push(error));
    if (errors.length) throw errors[0];
  });

  afterAll(async () => {
    client?.close();
    await region?.stop();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("exits 2 with one line naming a bad or missing setting, before touching anything", async () => {
    const dataDir = path.join(tmpdir(), `bootstream-never-made-${process.pid}`);
    const base = {
      REGION_URL: "http://127.0.0.1:9",
      RACK_NAME: "r-settings",
      RACK_SECRET: "s",
      DATA_DIR: dataDir,
    };
    expect(await runRackCommand({ ...base, DOWNLOAD_CONCURRENCY: "lots" })).toEqual({
      code: 2,
      output: 'bootstream rack: invalid DOWNLOAD_CONCURRENCY: "lots" is not a whole number from 1 to 64\n',
    });
    const missing = await runRackCommand({ ...base, RACK_SECRET: "" });
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(
      /^bootstream rack: missing RACK_TOKEN \(or --token\)[^\n]*RACK_SECRET[^\n]*\n$/,
    );
    // A flag wins over the environment, and is checked the same way.
    const flag = await runRackCommand(base, ["--rack-sync-schedule", "every minute"]);
    expect(flag.code).toBe(2);
    expect(flag.output).toMatch(/^bootstream rack: invalid RACK_SYNC_SCHEDULE[^\n]*\n$/);
    expect(await exists(dataDir)).toBe(false);
  });

  it("refuses to start in the region's data directory, and leaves the region's store alone", async () => {
    const before = await storeFiles(region.dataDir);
    const result = await runRackCommand({
      REGION_URL: region.url,
      RACK_NAME: "r-in-region-dir",
      RACK_SECRET: TEST_RACK_SECRET,
      DATA_DIR: region.dataDir,
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain(
      `bootstream rack: cannot start: ${region.dataDir} holds a region's database; give the rack a data directory of its own\n`,
    );
    expect(await storeFiles(region.dataDir)).toEqual(before);
    expect(await exists(path.join(region.dataDir, "current"))).toBe(false);
    expect(await exists(path.join(region.dataDir, "snapshots"))).toBe(false);
    expect(rackState(client.state, "r-in-region-dir")).toBeUndefined();
  });

  it("keeps knocking after the region refuses its secret, slowly", async () => {
    const dataDir = await fsp.mkdtemp(path.join(tmpdir(), "bootstream-r-wrong-"));
    cleanup.push(() => removeDir(dataDir));
    const lines: LogLine[] = [];
    const log = pino(
      { level: "info", timestamp: pino.stdTimeFunctions.isoTime },
      { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
    );
    // In-process, for the one setting the command does not expose: the retry delay (30 s there).
    const agent = await RackAgent.start(
      {
        regionUrl: region.url,
        name: "r-wrong-secret",
        credential: { kind: "secret", value: "not-the-rack-secret" },
        dataDir,
        syncSchedule: NEVER,
        downloadConcurrency: 2,
        logLevel: "info",
      },
      log,
      { slowRetryMs: 300 },
    );
    cleanup.push(() => agent.close());
    const refusedByRegion = () =>
      region
        .output()
        .split("\n")
        .filter((line) => line.includes('"rack refused: wrong rack secret"')).length;
    // The region logs the first refusal at once and then a count per spell (throttled refusal logs);
    // the agent logs every refusal it gets.
    await until(
      () =>
        refusedByRegion() >= 1 &&
        lines.filter((l) => l.msg === "the region refused the rack secret").length >= 3,
      "a refusal in the region's log and three in the agent's",
      () => lines.map((l) => l.msg).join("\n"),
    );
    const refusals = lines.filter((l) => l.msg === "the region refused the rack secret");
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    expect(refusals.every((l) => (l["level"] as number) === 50)).toBe(true);
    const retries = lines.filter((l) => l.msg === "will retry the connection");
    expect(retries.length).toBeGreaterThanOrEqual(2);
    // Each retry waits slowRetryMs ± 25 %; it does not hammer the region.
    for (const retry of retries) {
      expect(retry["retryInMs"]).toBeGreaterThanOrEqual(225);
      expect(retry["retryInMs"]).toBeLessThanOrEqual(375);
    }
    const times = refusals.map((l) => Date.parse(l.time));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(200);
    expect(lines.some((l) => l.msg === "connected to region")).toBe(false);
    expect(rackState(client.state, "r-wrong-secret")).toBeUndefined();
  });

  it("reports progress while it downloads, at most two reports a second, and the region takes each", async () => {
    const { rack, wire } = await linkedRack("r-progress", { bytesPerSecond: 1 * MiB });
    const manifest = await synced(rack, "r-progress");
    const finished = logged(rack, "sync finished");
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({ trigger: "start", result: "published", missing: noble.shas.size });
    expect(new Set(shasOf(manifest))).toEqual(noble.shas);

    const reports = wire.reports;
    const progress = reports.filter((r) => r.report.syncing && r.report.progress !== null);
    const bytesTotal = manifest.images.flatMap((i) => i.files).reduce((sum, f) => sum + f.size, 0);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.every((r) => r.report.progress!.bytesTotal === bytesTotal)).toBe(true);
    const done = progress.map((r) => r.report.progress!.bytesDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done.some((bytes) => bytes > 0 && bytes < bytesTotal)).toBe(true);
    // At most one report per 500 ms, however many progress ticks the download makes.
    const span = reports.at(-1)!.at - reports[0]!.at;
    expect(reports.length).toBeLessThanOrEqual(Math.floor((span + 250) / 500) + 1);

    // The report after the sync is the published set, and the region accepted every report it got.
    const last = await until(
      () => wire.reports.find((r) => !r.report.syncing && r.report.inventory.length > 0),
      "a report of the published set",
    );
    expect(last.report).toEqual({
      inventory: shasOf(manifest),
      generation: manifest.generation,
      syncing: false,
      progress: null,
      lastSync: expect.any(String) as string,
      error: null,
    });
    await until(
      () => wire.reports.every((r) => wire.acks.has(`${r.link}:${r.id}`)),
      "the region's answer to every report",
    );
    expect(wire.reports.map((r) => wire.acks.get(`${r.link}:${r.id}`))).toEqual(
      wire.reports.map(() => ({ ok: true })),
    );
  });

  it("runs one sync at a time, and folds the requests made meanwhile into one more run", async () => {
    const { rack, wire, throttle } = await linkedRack("r-one-at-a-time", { bytesPerSecond: 128 * 1024 });
    await until(() => logged(rack, "sync started").length === 1, "the first sync", tail(rack));
    // Three finished imports, three sync:now, all while the first sync is still downloading.
    for (let i = 0; i < 3; i++) await importOnce();
    await until(
      () => wire.events.filter((e) => e.name === "sync:now").length === 3,
      "three sync:now on the wire",
    );
    expect(logged(rack, "sync finished")).toHaveLength(0);
    throttle.bytesPerSecond = Infinity;
    await until(() => logged(rack, "sync finished").length >= 2, "the first sync and one more", tail(rack));
    // A fourth request after both ended: if the three had queued three runs, they would come first.
    await importOnce();
    await until(() => logged(rack, "sync finished").length >= 3, "the probe's sync", tail(rack));

    const order = logsOf(rack)
      .filter((l) => l.msg === "sync started" || l.msg === "sync finished")
      .map((l) =>
        l.msg === "sync started" ? `start:${String(l["trigger"])}` : `end:${String(l["result"])}`,
      );
    expect(order).toEqual([
      "start:start",
      "end:published",
      "start:sync:now",
      "end:unchanged",
      "start:sync:now",
      "end:unchanged",
    ]);
    // Rack and region log lines carry ISO 8601 times, in the order they were written.
    const regionOutput = region.output();
    const regionLines = regionOutput
      .slice(0, regionOutput.lastIndexOf("\n") + 1)
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogLine);
    for (const lines of [logsOf(rack), regionLines]) {
      const times = lines.map((l) => l.time);
      expect(times.length).toBeGreaterThan(2);
      expect(times.filter((t) => !ISO_TIME.test(t))).toEqual([]);
      expect([...times].sort()).toEqual(times);
    }
    expect(logged(rack, "file downloaded")).toHaveLength(noble.shas.size);
  });

  it("throws away .partials of files the manifest no longer names, and resumes the ones it does", async () => {
    const dataDir = await fsp.mkdtemp(path.join(tmpdir(), "bootstream-r-partials-"));
    cleanup.push(() => removeDir(dataDir));
    // Left by an earlier sync: a jammy file (not selected any more), and half of a noble file.
    const [jammyFile] = await imageShas(mirror, "jammy", "amd64");
    const bytes = await fsp.readFile(regionFile(noble.largest));
    const half = Math.floor(bytes.length / 2);
    await fsp.mkdir(path.join(dataDir, "partial"), { recursive: true });
    await fsp.writeFile(partialFile(dataDir, jammyFile!), "bytes of a file nobody wants");
    await fsp.writeFile(partialFile(dataDir, noble.largest), bytes.subarray(0, half));

    const { rack } = await linkedRack("r-partials", { dataDir });
    await synced(rack, "r-partials");

    expect(await exists(partialFile(dataDir, jammyFile!))).toBe(false);
    expect(await fsp.readdir(path.join(dataDir, "partial"))).toEqual([]);
    const resumed = logged(rack, "file downloaded").find((l) => l["sha256"] === noble.largest);
    expect(resumed).toMatchObject({ resumedFrom: half, bytesFetched: bytes.length - half });
    expect(await sha256File(path.join(dataDir, "store", noble.largest.slice(0, 2), noble.largest))).toBe(
      noble.largest,
    );
  });

  it("never installs a file with the wrong bytes, and the schedule retries until the region's bytes are right", async () => {
    // The region's copy of a noble file rots on disk (same size, other bytes).
    const bad = noble.smallest;
    const good = await fsp.readFile(regionFile(bad));
    await replaceRegionFile(bad, Buffer.from(good.map((byte) => byte ^ 0xff)));
    cleanup.push(async () => {
      await replaceRegionFile(bad, good);
    });

    const { rack, dataDir } = await linkedRack("r-bad-bytes", {
      env: { RACK_SYNC_SCHEDULE: "*/1 * * * * *" },
    });
    await until(() => logged(rack, "sync failed").length >= 2, "two failed syncs", tail(rack));
    const failed = logged(rack, "sync failed");
    expect(failed[0]).toMatchObject({
      trigger: "start",
      result: "failed",
      generation: expect.any(Number) as number,
    });
    expect(failed[1]).toMatchObject({ trigger: "schedule", result: "failed" });
    expect(String(failed[0]!["err"])).toMatch(
      new RegExp(
        `^1 of ${noble.shas.size} file\\(s\\) could not be downloaded; kept the published set of generation 0: .*sha256 mismatch, expected ${bad}`,
      ),
    );
    const state = await waitFor(
      client,
      (s) => rackState(s, "r-bad-bytes")?.error?.includes("sha256 mismatch") === true,
      10_000,
      "the error on the region",
    );
    expect(rackState(state, "r-bad-bytes")).toMatchObject({ online: true, imagesSynced: 0, imagesTotal: 1 });
    // Nothing published, the bad bytes neither installed nor kept; the good files wait for the next try.
    expect(await exists(path.join(dataDir, "current"))).toBe(false);
    const stored = await storeFiles(dataDir);
    expect(stored.has(bad)).toBe(false);
    expect([...stored.keys()].sort()).toEqual([...noble.shas].filter((sha) => sha !== bad).sort());
    expect(await corruptStoreFiles(dataDir)).toEqual([]);
    expect(await partialBytes(dataDir, bad)).toBe(0);

    await replaceRegionFile(bad, good);
    const manifest = await synced(rack, "r-bad-bytes");
    const published = logged(rack, "sync finished").find((l) => l["result"] === "published");
    // Nobody asked: the schedule tried again.
    expect(published).toMatchObject({ trigger: "schedule", downloaded: 1 });
    expect(await publishedFiles(dataDir)).toEqual(filesNamedBy(manifest));
    expect(await corruptStoreFiles(dataDir)).toEqual([]);
    await waitFor(client, (s) => rackState(s, "r-bad-bytes")?.error === null, 10_000, "the error cleared");
  });

  it("reports its published set when it starts again, and syncs again when the link comes back", async () => {
    const first = await linkedRack("r-restart");
    const manifest = await synced(first.rack, "r-restart");
    expect(await first.rack.stop()).toBe(0);
    await waitFor(client, (s) => rackState(s, "r-restart")?.online === false, 20_000, "r-restart offline");
    // The region forgets what the rack held: whatever it shows next, the rack told it.
    await client.command("rack:remove", { name: "r-restart" });
    await waitFor(client, (s) => rackState(s, "r-restart") === undefined, 5_000, "r-restart forgotten");

    const seen = first.wire.reports.length;
    const rack = await first.restart();
    await until(() => logged(rack, "sync finished").length === 1, "the sync after the restart", tail(rack));
    expect(logged(rack, "rack agent started")[0]).toMatchObject({
      generation: manifest.generation,
      files: shasOf(manifest).length,
    });
    // The first word to the region, before any sync: the set on disk, published when it was.
    expect(first.wire.reports[seen]!.report).toEqual({
      inventory: shasOf(manifest),
      generation: manifest.generation,
      syncing: false,
      progress: null,
      lastSync: manifest.publishedAt,
      error: null,
    });
    expect(logged(rack, "sync finished")[0]).toMatchObject({
      trigger: "start",
      result: "unchanged",
      missing: 0,
    });
    expect(logged(rack, "file downloaded")).toEqual([]);
    await waitFor(
      client,
      (s) => rackState(s, "r-restart")?.online === true && rackState(s, "r-restart")?.imagesSynced === 1,
      10_000,
      "r-restart back, holding noble",
    );

    // The link drops (not the rack): it reconnects by itself and syncs again.
    const links = new Set(first.wire.reports.map((r) => r.link));
    first.wire.cut();
    await until(() => logged(rack, "connected to region").length === 2, "the reconnection", tail(rack));
    const sinceReconnect = () => {
      const lines = logsOf(rack);
      const connects = lines.flatMap((line, i) => (line.msg === "connected to region" ? [i] : []));
      return lines.slice(connects[1]! + 1);
    };
    await until(
      () => sinceReconnect().some((l) => l.msg === "sync finished"),
      "a sync after reconnecting",
      tail(rack),
    );
    // The region sends its manifest again on connect; that it may bring one more sync is fine.
    expect(sinceReconnect().find((l) => l.msg === "sync started")).toMatchObject({ trigger: "reconnect" });
    expect(sinceReconnect().find((l) => l.msg === "sync finished")).toMatchObject({
      result: "unchanged",
      missing: 0,
    });
    const after = await until(
      () => first.wire.reports.find((r) => !links.has(r.link) && !r.report.syncing),
      "a report on the new connection",
    );
    expect(after.report.inventory).toEqual(shasOf(manifest));
    await waitFor(
      client,
      (s) => rackState(s, "r-restart")?.online === true,
      10_000,
      "r-restart online again",
    );
  });

  it("on SIGTERM mid-download keeps the .partial, publishes nothing and exits 0", async () => {
    const { rack, dataDir } = await linkedRack("r-sigterm", { bytesPerSecond: 256 * 1024 });
    await waitFor(client, (s) => rackState(s, "r-sigterm")?.online === true, 20_000, "r-sigterm online");
    await until(
      async () => (await partialBytes(dataDir, noble.largest)) >= 64 * 1024,
      "part of the squashfs",
      tail(rack),
    );
    expect(await rack.stop()).toBe(0);
    const kept = await partialBytes(dataDir, noble.largest);
    expect(kept).toBeGreaterThanOrEqual(64 * 1024);
    expect(kept).toBeLessThan((await fsp.stat(regionFile(noble.largest))).size);
    const messages = logsOf(rack).map((l) => l.msg);
    const order = ["shutting down", "sync aborted", "rack agent stopped"].map((msg) => messages.indexOf(msg));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(logged(rack, "shutting down")[0]).toMatchObject({ why: "SIGTERM" });
    expect(logged(rack, "sync failed")).toEqual([]);
    expect(await exists(path.join(dataDir, "current"))).toBe(false);
    expect((await storeFiles(dataDir)).has(noble.largest)).toBe(false);
    await waitFor(client, (s) => rackState(s, "r-sigterm")?.online === false, 20_000, "r-sigterm offline");
  });

  it("keeps the previous set when a file cannot be had, says why, and publishes once the region has it again", async () => {
    const first = await linkedRack("r-missing");
    const before = await synced(first.rack, "r-missing");
    const link = await fsp.readlink(path.join(first.dataDir, "current"));
    const files = await publishedFiles(first.dataDir);
    expect(await first.rack.stop()).toBe(0);

    // While the rack is away, jammy is selected and imported; then one of its files goes missing.
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    });
    await waitFor(client, (s) => s.images.get(JAMMY)?.state === "synced", 30_000, "jammy imported");
    await importIdle();
    const jammy = [...(await imageShas(mirror, "jammy", "amd64"))].filter((sha) => !noble.shas.has(sha));
    const lost = jammy[0]!;
    await fsp.rm(regionFile(lost));

    const rack = await first.restart();
    const failedState = await waitFor(
      client,
      (s) => rackState(s, "r-missing")?.error != null,
      20_000,
      "the rack's error on the region",
    );
    expect(rackState(failedState, "r-missing")!.error).toMatch(
      new RegExp(
        `^1 of ${jammy.length} file\\(s\\) could not be downloaded; kept the published set of generation ${before.generation}: .*404`,
      ),
    );
    expect(rackState(failedState, "r-missing")).toMatchObject({
      online: true,
      imagesSynced: 1,
      imagesTotal: 2,
    });
    // The image row says the racks failed, how many, and the first one's error; not "Waiting for…".
    const rowFailed = await waitFor(
      client,
      (s) => statusText(s.images.get(JAMMY)!).startsWith("Sync failed on "),
      20_000,
      "jammy failed on the racks",
    );
    const failedJammy = rowFailed.images.get(JAMMY)!;
    expect(failedJammy.racks.failed).toBeGreaterThanOrEqual(1);
    expect(failedJammy.racks).toMatchObject({ synced: 0, syncing: 0 });
    expect(statusText(failedJammy)).toMatch(
      /^Sync failed on \d+ rack controllers?: 1 of \d+ file\(s\) could not be downloaded; .*404/,
    );
    // noble, which the rack still holds, is not failed.
    expect(statusText(rowFailed.images.get(NOBLE)!)).not.toMatch(/^Sync failed/);
    await until(() => logged(rack, "sync failed").length === 1, "sync failed", tail(rack));
    expect(logged(rack, "file download failed")).toEqual([expect.objectContaining({ sha256: lost })]);
    // Machines still boot from the very same set.
    expect(await fsp.readlink(path.join(first.dataDir, "current"))).toBe(link);
    expect(await publishedFiles(first.dataDir)).toEqual(files);
    expect((await currentManifest(first.dataDir))!.generation).toBe(before.generation);
    // What did arrive is kept for the next try.
    const stored = await storeFiles(first.dataDir);
    expect(jammy.filter((sha) => !stored.has(sha))).toEqual([lost]);

    // The next import fetches the file again, and its sync:now brings the rack along.
    await importOnce();
    expect(await exists(regionFile(lost))).toBe(true);
    const after = await synced(rack, "r-missing");
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(after.images.map((i) => i.id)).toEqual([JAMMY, NOBLE]);
    expect(logged(rack, "sync finished").at(-1)).toMatchObject({
      trigger: "sync:now",
      result: "published",
      downloaded: 1,
    });
    expect(await publishedFiles(first.dataDir)).toEqual(filesNamedBy(after));
    // Across both tries it fetched each jammy file once, and nothing it already held.
    expect(
      logged(rack, "file downloaded")
        .map((l) => l["sha256"] as string)
        .sort(),
    ).toEqual([...jammy].sort());
    expect(rackState(client.state, "r-missing")!.error).toBeNull();
    await waitFor(
      client,
      (s) => s.images.get(JAMMY)!.racks.failed === 0 && s.images.get(JAMMY)!.racks.error === null,
      10_000,
      "jammy no longer failed on the racks",
    );
  });

  it("empties its published set and its store when nothing is selected", async () => {
    const { rack, dataDir } = await linkedRack("r-empty");
    const before = await synced(rack, "r-empty");
    expect(await storeFiles(dataDir)).not.toEqual(new Map());

    await client.command("selection:save", { revision: client.state.selection.revision, items: [] });
    const after = await until(
      async () => {
        const manifest = await currentManifest(dataDir);
        return manifest && manifest.generation > before.generation ? manifest : null;
      },
      "an empty set",
      tail(rack),
    );
    expect(after.images).toEqual([]);
    // Saving the selection also runs an import, whose sync:now brings one more (unchanged) sync.
    const emptied = await until(
      () => logged(rack, "sync finished").find((l) => l["generation"] === after.generation),
      "the sync of the empty set",
      tail(rack),
    );
    expect(emptied).toMatchObject({
      trigger: "manifest",
      result: "published",
      downloaded: 0,
      removedFiles: shasOf(before).length,
    });
    await importIdle();
    await waitFor(
      client,
      (s) => rackState(s, "r-empty")?.imagesTotal === 0 && rackState(s, "r-empty")?.error === null,
      10_000,
      "the region showing an empty rack",
    );
    expect(await fsp.readdir(path.join(dataDir, "current"))).toEqual(["manifest.json"]);
    expect((await currentManifest(dataDir))!.generation).toBe(after.generation);
    expect(await storeFiles(dataDir)).toEqual(new Map());
    expect(await fsp.readdir(path.join(dataDir, "partial"))).toEqual([]);
  });
});
