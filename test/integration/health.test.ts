import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { createLogger } from "../../apps/server/src/log";
import { removeDir } from "../helpers/region";
import { fillDatabase, regionConfig } from "../helpers/in-process";
import { waitFor, watch } from "../helpers/watch";

// In-process, so the test can reach the region's own SQLite connection: PRAGMA max_page_count is per
// connection, and it gives SQLITE_FULL for real without a full filesystem.
describe("region health", () => {
  let dataDir: string;
  let region: RegionHandle;
  let client: BootstreamClient;
  const token = "health-admin-token-0123456789abcdef0123456789";

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-health-"));
    region = await startRegion(
      regionConfig(dataDir, { adminToken: token }),
      createLogger("silent", "health-test"),
    );
    client = await watch(region.url, token);
  });
  afterAll(async () => {
    client?.close();
    await region?.close();
    await removeDir(dataDir);
  });

  it("answers /healthz with status, role and checks on a single node", async () => {
    const response = await fetch(`${region.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "ok",
      role: "single",
      checks: { database: "ok", redis: "n/a" },
      errors: {},
    });
    expect(client.state.health?.status).toBe("ok");
  });

  it("is degraded while database writes fail, names the check, and recovers by itself", async () => {
    // The region's own writes, until the file has no room left (no command: the bucket would refuse).
    const full = await fillDatabase(region);
    try {
      expect(String(full.failure), "a write eventually fails").toMatch(/full/);

      const degraded = await waitFor(client, (s) => s.health?.status === "degraded", 30_000, "health event");
      expect(degraded.health?.checks.database).toBe("failing");
      expect(degraded.health?.errors.database).toMatch(/SQLITE_FULL/);

      const response = await fetch(`${region.url}/healthz`);
      expect(response.status).toBe(503);
      const body = (await response.json()) as { status: string; checks: Record<string, string> };
      expect(body.status).toBe("degraded");
      expect(body.checks).toEqual({ database: "failing", redis: "n/a" });
      const metrics = await (await fetch(`${region.url}/metrics`)).text();
      expect(metrics).toContain('bootstream_health_degraded{check="database"} 1');
      expect(metrics).toContain('bootstream_health_degraded{check="redis"} 0');

      // A snapshot made now carries it too (a dashboard that connects during the outage).
      const late = await watch(region.url, token);
      expect(late.state.health?.checks.database).toBe("failing");
      late.close();
    } finally {
      // Space returns: the region's probe write succeeds and it says so without any command.
      await full.release();
    }
    await waitFor(client, (s) => s.health?.status === "ok", 30_000, "health to recover");
    const response = await fetch(`${region.url}/healthz`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe("ok");
    await expect(client.command("settings:update", { autoImport: false })).resolves.toBeDefined();
  });
});
