import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContentStore } from "@bootstream/images";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RackAgent } from "./agent";
import type { RackConfig } from "./config";
import { FakeRegion, image } from "./test-region";

type LogLine = { level: number; msg: string; [key: string]: unknown };

let region: FakeRegion;
let dataDir: string;
let agents: RackAgent[];
let lines: LogLine[];

beforeEach(async () => {
  region = await FakeRegion.start();
  dataDir = await fsp.mkdtemp(join(tmpdir(), "bootstream-rack-agent-"));
  agents = [];
  lines = [];
});

afterEach(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await region.close();
  await fsp.rm(dataDir, { recursive: true, force: true });
});

async function startAgent(overrides: Partial<RackConfig> = {}): Promise<RackAgent> {
  const config: RackConfig = {
    regionUrl: region.url,
    name: "rack-1",
    secret: region.secret,
    dataDir,
    syncSchedule: "0 0 1 1 *", // out of the way unless a test asks for it
    downloadConcurrency: 2,
    logLevel: "debug",
    ...overrides,
  };
  const log = pino(
    { level: "debug" },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  const agent = await RackAgent.start(config, log, { slowRetryMs: 200, reportIntervalMs: 500 });
  agents.push(agent);
  return agent;
}

const messages = (msg: string) => lines.filter((l) => l.msg === msg);

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; log:\n${lines.map((l) => l.msg).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const published = (rel: string) => fsp.readFile(join(dataDir, "current", rel));
const exists = (path: string) =>
  fsp.access(path).then(
    () => true,
    () => false,
  );

describe("rack agent against a fake region", { timeout: 30_000 }, () => {
  it("syncs the manifest, publishes it and reports the inventory", async () => {
    const kernel = region.addFile(randomBytes(300_000));
    const initrd = region.addFile(randomBytes(200_000));
    const manifest = region.publish([
      image("ubuntu/noble/amd64", "20240101", [kernel, initrd], ["boot-kernel", "boot-initrd"]),
    ]);

    await startAgent();
    await region.waitFor(
      () => region.lastReport()?.generation === manifest.generation,
      "a report of generation 1",
    );

    const report = region.lastReport()!;
    expect(report.inventory).toEqual([kernel.sha256, initrd.sha256].sort());
    expect(report.error).toBeNull();
    expect(report.lastSync).not.toBeNull();
    expect(await published("images/ubuntu/noble/amd64/20240101/boot-kernel")).toEqual(kernel.bytes);
    expect(await published("images/ubuntu/noble/amd64/20240101/boot-initrd")).toEqual(initrd.bytes);
    expect(region.fileRequests.every((r) => r.sha256 === kernel.sha256 || r.sha256 === initrd.sha256)).toBe(
      true,
    );

    expect(messages("rack agent started")).toHaveLength(1);
    expect(messages("connected to region")).toHaveLength(1);
    expect(messages("sync started")[0]).toMatchObject({ trigger: "start", generation: 1 });
    await until(() => messages("sync finished").length > 0, "sync finished");
    expect(messages("sync finished")[0]).toMatchObject({ result: "published", downloaded: 2, missing: 2 });
  });

  it("switches to a new version in one step and deletes what the manifest no longer names", async () => {
    const shared = region.addFile(randomBytes(1000));
    const v1 = region.addFile(randomBytes(1000));
    const v2 = region.addFile(randomBytes(1000));
    region.publish([image("ubuntu/noble/amd64", "1", [shared, v1], ["squashfs", "boot-kernel"])]);
    const agent = await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");

    region.publish([image("ubuntu/noble/amd64", "2", [shared, v2], ["squashfs", "boot-kernel"])]);
    await region.waitFor(() => region.lastReport()?.generation === 2, "generation 2");
    await agent.idle();

    expect(region.lastReport()!.inventory).toEqual([shared.sha256, v2.sha256].sort());
    expect(await fsp.readdir(join(dataDir, "current/images/ubuntu/noble/amd64"))).toEqual(["2"]);
    // The previous snapshot stays until the next publish, for a machine still reading from it.
    expect(await fsp.readdir(join(dataDir, "snapshots"))).toHaveLength(2);
    const store = await ContentStore.open(dataDir);
    expect(await store.list()).toEqual([shared.sha256, v2.sha256].sort());
    // The shared file was not fetched again.
    expect(region.fileRequests.filter((r) => r.sha256 === shared.sha256)).toHaveLength(1);
  });

  it("drops a deselected image at the next sync, down to an empty set", async () => {
    const a = region.addFile(randomBytes(100));
    const b = region.addFile(randomBytes(100));
    region.publish([image("ubuntu/noble/amd64", "1", [a]), image("ubuntu/jammy/amd64", "1", [b])]);
    const agent = await startAgent();
    await region.waitFor(() => region.lastReport()?.inventory.length === 2, "both images");

    region.publish([image("ubuntu/noble/amd64", "1", [a])]);
    await region.waitFor(() => region.lastReport()?.generation === 2, "generation 2");
    expect(await fsp.readdir(join(dataDir, "current/images/ubuntu"))).toEqual(["noble"]);

    region.publish([]);
    await region.waitFor(() => region.lastReport()?.generation === 3, "generation 3");
    await agent.idle();
    expect(region.lastReport()!.inventory).toEqual([]);
    expect(await fsp.readdir(join(dataDir, "current"))).toEqual(["manifest.json"]);
    expect(await (await ContentStore.open(dataDir)).list()).toEqual([]);
  });

  it("keeps the previous set when a file fails, reports the error, and publishes once it can", async () => {
    const good = region.addFile(randomBytes(1000));
    region.publish([image("ubuntu/noble/amd64", "1", [good])]);
    const agent = await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");

    const newer = region.addFile(randomBytes(5000));
    const missing = region.addFile(randomBytes(5000));
    region.setBehaviour(missing.sha256, { kind: "status", status: 404 });
    region.publish([image("ubuntu/noble/amd64", "2", [newer, missing])]);
    await region.waitFor(() => region.lastReport()?.error != null, "an error report");
    await agent.idle();

    const failed = region.lastReport()!;
    expect(failed.error).toMatch(/1 of 2 file\(s\) could not be downloaded.*404/);
    expect(failed.generation).toBe(1);
    expect(failed.inventory).toEqual([good.sha256]);
    expect(await fsp.readdir(join(dataDir, "current/images/ubuntu/noble/amd64"))).toEqual(["1"]);
    expect(messages("sync failed")).toHaveLength(1);
    // The file that did arrive is kept for the next try.
    const store = await ContentStore.open(dataDir);
    expect(await store.has(newer.sha256)).toBe(true);

    region.setBehaviour(missing.sha256, null);
    region.syncNow();
    await region.waitFor(() => region.lastReport()?.generation === 2, "generation 2");
    expect(region.lastReport()!.error).toBeNull();
    expect(region.fileRequests.filter((r) => r.sha256 === newer.sha256)).toHaveLength(1);
    expect(await published("images/ubuntu/noble/amd64/2/file-1")).toEqual(missing.bytes);
  });

  it("never installs a file whose bytes do not match its sha256", async () => {
    const file = region.addFile(randomBytes(2000));
    region.setBehaviour(file.sha256, { kind: "corrupt" });
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    await startAgent();
    await region.waitFor(() => region.lastReport()?.error != null, "an error report");
    expect(region.lastReport()!.error).toMatch(/sha256 mismatch/);
    expect(region.lastReport()!.inventory).toEqual([]);
    expect(await exists(join(dataDir, "current"))).toBe(false);
  });

  it("resumes a .partial left by a killed agent with a Range request", async () => {
    const file = region.addFile(randomBytes(100_000));
    const store = await ContentStore.open(dataDir);
    await fsp.writeFile(store.partialPath(file.sha256), file.bytes.subarray(0, 40_000));
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);

    await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");
    expect(region.fileRequests).toEqual([{ sha256: file.sha256, range: "bytes=40000-" }]);
    expect(messages("file downloaded")[0]).toMatchObject({ resumedFrom: 40_000, bytesFetched: 60_000 });
    expect(await published("images/ubuntu/noble/amd64/1/file-0")).toEqual(file.bytes);
  });

  it("throws away .partials of files the manifest no longer names", async () => {
    const store = await ContentStore.open(dataDir);
    const stale = "f".repeat(64);
    await fsp.writeFile(store.partialPath(stale), "old bytes");
    region.publish([image("ubuntu/noble/amd64", "1", [region.addFile(randomBytes(10))])]);
    const agent = await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");
    await agent.idle();
    expect(await store.partialBytes(stale)).toBe(0);
  });

  it("sends progress while it downloads, at most two reports a second", async () => {
    const file = region.addFile(randomBytes(400_000));
    region.setBehaviour(file.sha256, { kind: "slow", bytesPerSecond: 200_000 });
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    const startedAt = Date.now();
    await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");
    const seconds = (Date.now() - startedAt) / 1000;

    const progress = region.reports.filter((r) => r.report.syncing && r.report.progress !== null);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)!.report.progress!.bytesTotal).toBe(400_000);
    expect(region.reports.length).toBeLessThanOrEqual(Math.ceil(seconds * 2) + 1);
    const final = region.lastReport()!;
    expect(final).toMatchObject({ syncing: false, progress: null });
  });

  it("runs one sync at a time and folds requests made meanwhile into one more run", async () => {
    const file = region.addFile(randomBytes(150_000));
    region.setBehaviour(file.sha256, { kind: "slow", bytesPerSecond: 300_000 });
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    const agent = await startAgent();
    await until(() => messages("sync started").length === 1, "the first sync");
    for (let i = 0; i < 5; i++) region.syncNow();
    await until(() => messages("sync finished").length === 2, "two syncs");
    await agent.idle();

    const order = lines
      .filter((l) => l.msg === "sync started" || l.msg === "sync finished")
      .map((l) => l.msg);
    expect(order).toEqual(["sync started", "sync finished", "sync started", "sync finished"]);
    expect(messages("sync started")[1]).toMatchObject({ trigger: "sync:now" });
    expect(messages("sync finished")[1]).toMatchObject({ result: "unchanged", missing: 0 });
  });

  it("syncs on the schedule", async () => {
    region.publish([image("ubuntu/noble/amd64", "1", [region.addFile(randomBytes(10))])]);
    await startAgent({ syncSchedule: "* * * * * *" });
    await until(() => messages("sync started").some((l) => l.trigger === "schedule"), "a scheduled sync");
  });

  it("logs a refused secret and keeps trying", async () => {
    await startAgent({ secret: "wrong" });
    await until(() => messages("the region refused the rack secret").length >= 2, "two refusals");
    expect(messages("the region refused the rack secret")[0]!.level).toBe(50);
    expect(region.connectedRacks()).toBe(0);
  });

  it("ignores a manifest that would write outside its tree, and says so", async () => {
    await startAgent();
    await region.waitFor(() => region.connectedRacks() === 1, "the connection");
    const file = region.addFile(randomBytes(10));
    region.sendRaw({
      generation: 9,
      images: [
        { id: "ubuntu/noble/amd64", version: "..", files: [{ ...file, size: 10, ftype: "x", name: "x" }] },
      ],
    });
    await region.waitFor(
      () => region.lastReport()?.error?.startsWith("invalid manifest") === true,
      "an error report",
    );
    expect(messages("invalid manifest ignored")).toHaveLength(1);
    expect(messages("sync started").map((l) => l.generation)).not.toContain(9);
    expect(region.fileRequests).toHaveLength(0);
  });

  it("reports the published set after a restart, and syncs again when it reconnects", async () => {
    const file = region.addFile(randomBytes(1000));
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    const first = await startAgent();
    await region.waitFor(() => region.lastReport()?.generation === 1, "generation 1");
    await first.close();
    await region.waitFor(() => region.connectedRacks() === 0, "the rack to leave");

    region.reports.length = 0;
    lines = [];
    await startAgent();
    expect(messages("rack agent started")[0]).toMatchObject({ generation: 1, files: 1 });
    await region.waitFor(() => region.reports.length > 0, "a report");
    expect(region.reports[0]!.report).toMatchObject({ generation: 1, inventory: [file.sha256] });
    await until(() => messages("sync finished").length > 0, "a sync");
    expect(messages("sync finished")[0]).toMatchObject({ result: "unchanged" });
    expect(region.fileRequests).toHaveLength(1);
  });

  it("stops on close: aborts the download, keeps its .partial", async () => {
    const file = region.addFile(randomBytes(400_000));
    region.setBehaviour(file.sha256, { kind: "slow", bytesPerSecond: 100_000 });
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    const agent = await startAgent();
    const store = await ContentStore.open(dataDir);
    await until(async () => (await store.partialBytes(file.sha256)) > 0, "some bytes");
    await agent.close();
    expect(messages("sync aborted")).toHaveLength(1);
    expect(messages("rack agent stopped")).toHaveLength(1);
    expect(await store.partialBytes(file.sha256)).toBeGreaterThan(0);
    expect(await exists(join(dataDir, "current"))).toBe(false);
  });
});
