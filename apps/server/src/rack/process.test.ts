import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ContentStore } from "@bootstream/images";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeRegion, image } from "./test-region";

// The real `bootstream rack` executable against the fake region: signals, exit codes and crashes.

const BIN = fileURLToPath(new URL("../../bin/bootstream.js", import.meta.url));

type Rack = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

let region: FakeRegion;
let dataDir: string;
let racks: Rack[];

beforeEach(async () => {
  region = await FakeRegion.start();
  dataDir = await fsp.mkdtemp(join(tmpdir(), "bootstream-rack-process-"));
  racks = [];
});

afterEach(async () => {
  for (const rack of racks) rack.child.kill("SIGKILL");
  await Promise.all(racks.map((r) => r.exited));
  await region.close();
  await fsp.rm(dataDir, { recursive: true, force: true });
});

function startRack(args: string[] = [], env: Record<string, string> = {}): Rack {
  const child = spawn(process.execPath, [BIN, "rack", ...args], {
    env: {
      PATH: process.env["PATH"] ?? "",
      REGION_URL: region.url,
      RACK_NAME: "rack-p",
      RACK_SECRET: region.secret,
      DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const rack = { child, output: () => output, exited };
  racks.push(rack);
  return rack;
}

function logLines(rack: Rack): { msg: string; [key: string]: unknown }[] {
  return rack
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string });
}

async function until(check: () => boolean | Promise<boolean>, what: string, rack: Rack, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${rack.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("bootstream rack (process)", { timeout: 60_000 }, () => {
  it("exits 2 with one line naming a bad setting", async () => {
    const rack = startRack([], { DOWNLOAD_CONCURRENCY: "lots" });
    expect(await rack.exited).toBe(2);
    expect(rack.output()).toBe(
      'bootstream rack: invalid DOWNLOAD_CONCURRENCY: "lots" is not a whole number from 1 to 64\n',
    );
  });

  it("exits 2 when a required setting is missing", async () => {
    const rack = startRack([], { RACK_SECRET: "" });
    expect(await rack.exited).toBe(2);
    expect(rack.output()).toMatch(/^bootstream rack: missing --secret \(or RACK_SECRET\)/);
  });

  it("resumes from its .partial after kill -9 and finishes", async () => {
    const file = region.addFile(randomBytes(600_000));
    region.setBehaviour(file.sha256, { kind: "slow", bytesPerSecond: 150_000 });
    region.publish([image("ubuntu/noble/amd64", "1", [file], ["boot-kernel"])]);
    const store = await ContentStore.open(dataDir);

    const first = startRack();
    await until(async () => (await store.partialBytes(file.sha256)) >= 100_000, "part of the file", first);
    first.child.kill("SIGKILL");
    await first.exited;
    const kept = await store.partialBytes(file.sha256);
    expect(kept).toBeGreaterThan(0);

    region.setBehaviour(file.sha256, null);
    const second = startRack();
    await until(() => logLines(second).some((l) => l.msg === "sync finished"), "the sync to finish", second);
    const downloaded = logLines(second).find((l) => l.msg === "file downloaded");
    expect(downloaded?.["resumedFrom"]).toBeGreaterThanOrEqual(kept);
    expect(region.fileRequests.at(-1)?.range).toMatch(/^bytes=\d+-$/);
    expect(await fsp.readFile(join(dataDir, "current/images/ubuntu/noble/amd64/1/boot-kernel"))).toEqual(
      file.bytes,
    );
    await region.waitFor(
      () => region.lastReport()?.inventory.includes(file.sha256) === true,
      "the inventory report",
    );
  });

  it("on SIGTERM aborts the download, keeps the .partial and exits 0", async () => {
    const file = region.addFile(randomBytes(600_000));
    region.setBehaviour(file.sha256, { kind: "slow", bytesPerSecond: 100_000 });
    region.publish([image("ubuntu/noble/amd64", "1", [file])]);
    const store = await ContentStore.open(dataDir);

    const rack = startRack();
    await until(() => logLines(rack).some((l) => l.msg === "rack agent started"), "the start line", rack);
    await until(async () => (await store.partialBytes(file.sha256)) > 0, "some bytes", rack);
    rack.child.kill("SIGTERM");
    expect(await rack.exited).toBe(0);
    const messages = logLines(rack).map((l) => l.msg);
    expect(messages).toEqual(expect.arrayContaining(["shutting down", "sync aborted", "rack agent stopped"]));
    expect(await store.partialBytes(file.sha256)).toBeGreaterThan(0);
  });
});
