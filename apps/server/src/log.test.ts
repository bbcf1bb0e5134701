import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "./log";

describe("createLogger (region, rack and demo logs)", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("writes JSON lines whose time is ISO 8601 UTC, not epoch milliseconds", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bootstream-log-"));
    dirs.push(dir);
    const file = path.join(dir, "region.log");
    const log = createLogger("info", "region", file);
    // The file is opened asynchronously (sync: false): wait for it, so the flush below reaches it.
    const stream = (
      log as unknown as Record<symbol, { fd: number; once(event: "ready", f: () => void): void }>
    )[pino.symbols.streamSym]!;
    if (stream.fd < 0) await new Promise<void>((resolve) => stream.once("ready", resolve));
    const before = Date.now();
    log.info({ image: "ubuntu/noble/amd64" }, "image synced");
    await new Promise<void>((resolve, reject) => log.flush((error) => (error ? reject(error) : resolve())));
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 30, name: "region", pid: process.pid, msg: "image synced" });
    expect(line["time"]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    // The moment it was written.
    expect(Date.parse(line["time"] as string)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(line["time"] as string)).toBeLessThanOrEqual(Date.now());
  });
});
