import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScratchDatabase, gate, probePostgres } from "../helpers/services";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect, post } from "../helpers/sockets";
import { MIGRATIONS } from "../../apps/server/src/region/db/migrations";

const postgres = gate("PostgreSQL", await probePostgres());

const leads = (region: RegionProcess) => region.output().includes("this region node leads");

describe.skipIf(postgres.skip)("region on PostgreSQL", () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  const regions: RegionProcess[] = [];

  beforeAll(async () => {
    if (postgres.mustFail) throw new Error(postgres.mustFail);
    database = await createScratchDatabase();
  });
  afterAll(async () => {
    for (const region of regions) {
      await region.stop();
      await removeDir(region.dataDir);
    }
    await database?.drop();
  });

  it("migrates once when two region nodes start at the same moment", async () => {
    const env = { DATABASE_URL: database.url };
    regions.push(
      ...(await Promise.all([
        startRegion({ env, adminToken: "pg-admin-0123456789abcdef0123456789" }),
        startRegion({ env, adminToken: "pg-admin-0123456789abcdef0123456789" }),
      ])),
    );
    for (const region of regions) {
      expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const migrations = await client.query("SELECT name FROM migrations");
    const tables = await client.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    await client.end();
    // Each migration ran once, although two nodes started together.
    expect(migrations.rows.map((r: { name: string }) => r.name).sort()).toEqual(
      MIGRATIONS.map((m) => m.name).sort(),
    );
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(
      expect.arrayContaining(["token", "selection", "image", "image_file", "rack", "audit", "import_run"]),
    );
  });

  it("shares tokens through the database; without Redis only the leader acts, and a follower says why", async () => {
    const follows = (r: RegionProcess) => r.output().includes("another region node leads; following");
    // Leadership settles just after "listening": wait until one leads and the other follows.
    for (let i = 0; i < 200 && !(regions.some(leads) && regions.some(follows)); i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const leader = regions.find(leads)!;
    const follower = regions.find((r) => r !== leader)!;
    expect(follows(follower)).toBe(true);
    const { json } = await post(leader.url, "pg-admin-0123456789abcdef0123456789", "token:create", {
      role: "viewer",
      name: "pg-viewer",
    });
    const { snapshot, socket } = await connect(follower.url, json.token as string);
    expect(snapshot.you).toEqual({ name: "pg-viewer", role: "viewer" });
    socket.close();
    expect(
      (
        await post(leader.url, "pg-admin-0123456789abcdef0123456789", "settings:update", {
          autoImport: false,
        })
      ).status,
    ).toBe(200);
    const refused = await post(follower.url, "pg-admin-0123456789abcdef0123456789", "settings:update", {
      autoImport: true,
    });
    expect(refused.status).toBe(500);
    expect((refused.json.error as { message: string }).message).toContain("REDIS_URL");
  });

  it("stops with exit 0 and starts again on the same database", async () => {
    const first = regions.find(leads)!;
    regions.splice(regions.indexOf(first), 1);
    expect(await first.stop()).toBe(0);
    const again = await startRegion({ env: { DATABASE_URL: database.url }, dataDir: first.dataDir });
    regions.push(again);
    const { snapshot, socket } = await connect(again.url, "pg-admin-0123456789abcdef0123456789");
    expect(snapshot.settings.autoImport).toBe(false);
    socket.close();
  });
});
