import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createScratchDatabase, gate, probePostgres } from "../helpers/services";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { MIGRATIONS } from "../../apps/server/src/region/db/migrations";
import { MIGRATION_LOCK_KEY } from "../../apps/server/src/region/db/database";

// Several region nodes starting at once on one fresh PostgreSQL database (each test its own
// database): one migrates, the others wait for it for as long as it holds the migration lock.

const postgres = gate("PostgreSQL", await probePostgres());
const ADMIN = "migration-lock-admin-0123456789abcdef01234";

describe.skipIf(postgres.skip)("the migration lock", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
  });

  async function scratch(): Promise<string> {
    if (postgres.mustFail) throw new Error(postgres.mustFail);
    const database = await createScratchDatabase();
    cleanups.push(() => database.drop());
    return database.url;
  }

  function start(env: Record<string, string>, onOutput?: (chunk: string) => void): Promise<RegionProcess> {
    return startRegion({
      env,
      adminToken: ADMIN,
      startTimeoutMs: 120_000,
      ...(onOutput ? { onOutput } : {}),
    }).then((region) => {
      cleanups.push(async () => {
        await region.stop();
        await removeDir(region.dataDir);
      });
      return region;
    });
  }

  async function migrationsRun(url: string): Promise<string[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>("SELECT name FROM migrations ORDER BY id");
      return rows.map((row) => row.name);
    } finally {
      await client.end();
    }
  }

  it("three nodes started at once on a fresh database all start; the migrations run once", async () => {
    const url = await scratch();
    const regions = await Promise.all([1, 2, 3].map(() => start({ DATABASE_URL: url })));
    for (const region of regions) expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    expect(await migrationsRun(url)).toHaveLength(MIGRATIONS.length);
  });

  it("a node waits past the statement timeout while another session holds the lock, then starts once it goes", async () => {
    const url = await scratch();
    // Another node's migrations, as slow as a loaded machine makes them: a live session holding the
    // migration lock on this database.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    cleanups.push(() => holder.end());
    await holder.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);

    // LEADER_LEASE 5s: every statement and query of the nodes is cut after 5 s.
    const env = { DATABASE_URL: url, LEADER_LEASE: "5s" };
    const stillWaiting = [1, 2, 3].map(() => {
      let output = "";
      let told: () => void = () => undefined;
      const seen = new Promise<void>((resolve) => (told = resolve));
      const onOutput = (chunk: string) => {
        output += chunk;
        // Logged 10 s into the wait: twice the statement timeout.
        if (output.includes("still waiting for another region node's migrations")) told();
      };
      return { seen, onOutput, output: () => output };
    });
    const starting = stillWaiting.map((node) => start(env, node.onOutput));
    // A start that fails meanwhile fails the test here, with the node's output.
    const failed = Promise.race(starting).then(
      () => "a node started while the lock was held",
      (error: unknown) => `a node failed its start: ${String(error)}`,
    );
    const waited = await Promise.race([
      Promise.all(stillWaiting.map((node) => node.seen)).then(() => "waited"),
      failed,
    ]);
    expect(waited).toBe("waited");
    for (const node of stillWaiting) {
      const line = node
        .output()
        .split("\n")
        .find((l) => l.includes("waiting for another region node's migrations"));
      // The first line names the session holding the lock.
      expect(JSON.parse(line!)).toMatchObject({ holder: { pid: expect.any(Number) } });
    }

    // The holder goes (as a node that dies does: its session ends, and the lock with it).
    await holder.end();
    const regions = await Promise.all(starting);
    for (const region of regions) {
      expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
      expect(region.output()).toContain("took the migration lock");
    }
    expect(await migrationsRun(url)).toHaveLength(MIGRATIONS.length);
  });
});
