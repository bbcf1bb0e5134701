import { execFile } from "node:child_process";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScratchDatabase, gate, probePostgres } from "../helpers/services";
import { BIN, removeDir, startRegion, type RegionProcess } from "../helpers/region";

const postgres = gate("PostgreSQL", await probePostgres());

type Run = { code: number; stdout: string; stderr: string };

/** The real CLI, in `cwd`, with no DATA_DIR or DATABASE_URL of the caller's unless given. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const { DATA_DIR: _dataDir, DATABASE_URL: _databaseUrl, ...rest } = process.env;
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...rest, BOOTSTREAM_URL: "", BOOTSTREAM_TOKEN: "", ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// `bootstream admin-token --database-url postgres://…`: with local access to the region's PostgreSQL,
// a lost admin token is replaced without the region (as `maas createadmin`), and the region takes it.
describe.skipIf(postgres.skip)("admin-token on PostgreSQL", () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let cwd: string;
  let region: RegionProcess | undefined;

  beforeAll(async () => {
    if (postgres.mustFail) throw new Error(postgres.mustFail);
    database = await createScratchDatabase();
    cwd = await mkdtemp(path.join(tmpdir(), "bootstream-admin-token-pg-"));
  });
  afterAll(async () => {
    await region?.stop();
    if (region) await removeDir(region.dataDir);
    await database?.drop();
    if (cwd) await removeDir(cwd);
  });

  it("makes a token on a database no region opened yet, which the region then accepts; a name twice is refused", async () => {
    const made = await cli(["admin-token", "--name", "pg-rescue", "--database-url", database.url], cwd);
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: "" });
    const token = made.stdout.trim();
    expect(token).toMatch(/^\S{32,}$/);
    // PostgreSQL only: nothing was written where it ran (no ./data, no SQLite file).
    expect(await readdir(cwd)).toEqual([]);

    const clash = await cli(["admin-token", "--name", "pg-rescue", "--database-url", database.url], cwd);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('a token named "pg-rescue" already exists');

    region = await startRegion({ env: { DATABASE_URL: database.url } });
    const status = await cli(["status", "--json", "--url", region.url, "--token", token], cwd);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ you: { name: "pg-rescue", role: "admin" } });

    // DATABASE_URL from the environment, against the database the running region uses: taken at once.
    const second = await cli(["admin-token", "--name", "pg-second"], cwd, { DATABASE_URL: database.url });
    expect(second.code).toBe(0);
    const audit = await cli(["audit", "--json", "--url", region.url, "--token", second.stdout.trim()], cwd);
    expect(audit.code).toBe(0);
    const entries = JSON.parse(audit.stdout) as { by: string; action: string; detail: string }[];
    expect(entries.filter((e) => e.by === "admin-token (local)").map((e) => e.detail)).toEqual([
      'admin token "pg-second" made with bootstream admin-token',
      'admin token "pg-rescue" made with bootstream admin-token',
    ]);
  }, 120_000);

  it("says in one line which database it cannot open, without its password, and exits 1", async () => {
    const url = new URL(database.url);
    url.password = "s3cret-pass";
    url.pathname = "/bootstream_no_such_database";
    const missing = await cli(["admin-token", "--name", "x", "--database-url", url.href], cwd);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^bootstream admin-token: cannot open the database at postgres:\/\/.*\n$/);
    expect(missing.stderr).toContain('database "bootstream_no_such_database" does not exist');
    expect(missing.stderr).not.toContain("s3cret-pass");

    const refused = await cli(
      ["admin-token", "--name", "x", "--database-url", "postgres://postgres@127.0.0.1:1/x"],
      cwd,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      "bootstream admin-token: cannot open the database at postgres://postgres@127.0.0.1:1/x: connect ECONNREFUSED 127.0.0.1:1\n",
    );
    const bad = await cli(["admin-token", "--name", "x", "--database-url", "mysql://db/x"], cwd);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("must start with postgres://");
  }, 60_000);
});
