import { existsSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect } from "../helpers/sockets";

// A first start that fails after generating the secrets (here EADDRINUSE: the port is taken) must not
// lock the admin out: nothing was shown, nothing is kept, and the next start generates and shows them.

describe("a first start that fails before it listens", () => {
  const regions: RegionProcess[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const region of regions) await region.stop();
    for (const dir of [...dirs, ...regions.map((r) => r.dataDir)]) await removeDir(dir);
  });

  it("shows and keeps nothing, and the next start shows an admin token that works", async () => {
    const holder = await startRegion();
    regions.push(holder);
    const port = new URL(holder.url).port;
    const dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-first-start-"));
    dirs.push(dataDir);
    const secrets = path.join(dataDir, "generated-secrets.txt");
    const fresh = { ADMIN_TOKEN: "", RACK_SECRET: "" };

    const failed = await startRegion({ dataDir, env: { ...fresh, PORT: port } }).then(
      () => "listened",
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/region exited with [1-9]\d* before listening/);
    expect(failed).toContain("EADDRINUSE");
    expect(failed).toContain("another process holds that port: stop it, or give --port / PORT");
    expect(failed).toContain("the next start makes new ones");
    // Not shown anywhere: no file, nothing on the output.
    expect(existsSync(secrets)).toBe(false);
    expect(failed).not.toMatch(/Admin token \(shown once/);

    const region = await startRegion({ dataDir, env: fresh });
    regions.push(region);
    const text = await readFile(secrets, "utf8");
    const tokens = [...text.matchAll(/^Admin token \(shown once; keep it\): (\S+)$/gm)].map((m) => m[1]!);
    expect(tokens).toHaveLength(1);
    expect(text.match(/^Rack secret /gm)).toHaveLength(1);
    const { socket } = await connect(region.url, tokens[0]!);
    socket.close();
  });
});
