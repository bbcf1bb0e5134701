// A region that dies is seen: in production an unhandled rejection is logged with its stack and the
// process exits non-zero (a supervisor restarts it into recover()); in the tests, the region helper
// reports a region that exits without being asked to, instead of letting the test time out.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, startRegion } from "../helpers/region";

describe("a region that dies", () => {
  let dir: string;
  let preload: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-crash-"));
    // Loaded into the real region with --import: SIGUSR2 plants a rejection nobody handles, as a
    // fire-and-forget bug in the region would.
    preload = path.join(dir, "reject-on-usr2.mjs");
    await writeFile(
      preload,
      'process.on("SIGUSR2", () => { Promise.reject(new Error("planted rejection")); });\n',
    );
  });
  afterAll(async () => {
    await removeDir(dir);
  });

  it("an unhandled rejection is logged fatal with its stack, the region exits 1, and the helper reports it", async () => {
    let report!: (error: Error) => void;
    const reported = new Promise<Error>((resolve) => (report = resolve));
    const region = await startRegion({
      env: { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` },
      onUnexpectedExit: (error) => report(error),
    });
    try {
      region.child.kill("SIGUSR2");
      const error = await reported;
      expect(region.child.exitCode).toBe(1);
      expect(error.message).toMatch(
        /^region http:\/\/127\.0\.0\.1:\d+ exited unexpectedly \(code 1, signal null\)/,
      );
      // The report carries the region's last output, so the failure says why.
      expect(error.message).toContain('"msg":"unhandled rejection"');
      const line = region
        .output()
        .split("\n")
        .find((text) => text.includes('"msg":"unhandled rejection"'));
      const logged = JSON.parse(line!) as { level: number; err: { message: string; stack: string } };
      expect(logged.level).toBe(60); // fatal
      expect(logged.err.message).toBe("planted rejection");
      expect(logged.err.stack).toMatch(/^Error: planted rejection\n\s+at /);
    } finally {
      await region.kill();
      await removeDir(region.dataDir);
    }
  });

  it("a region stopped or killed through the helper is not reported", async () => {
    const reports: Error[] = [];
    const stopped = await startRegion({ onUnexpectedExit: (error) => reports.push(error) });
    const killed = await startRegion({ onUnexpectedExit: (error) => reports.push(error) });
    expect(await stopped.stop()).toBe(0);
    await killed.kill();
    // "close" follows "exit": wait for both children's stdio to close before looking.
    await Promise.all(
      [stopped, killed].map(
        (region) =>
          new Promise<void>((resolve) =>
            region.child.stdout!.closed ? resolve() : region.child.once("close", () => resolve()),
          ),
      ),
    );
    expect(reports).toEqual([]);
    await removeDir(stopped.dataDir);
    await removeDir(killed.dataDir);
  });

  it("a region killed from outside is reported with its signal", async () => {
    let report!: (error: Error) => void;
    const reported = new Promise<Error>((resolve) => (report = resolve));
    const region = await startRegion({ onUnexpectedExit: (error) => report(error) });
    process.kill(region.child.pid!, "SIGKILL");
    expect((await reported).message).toMatch(/exited unexpectedly \(code null, signal SIGKILL\)/);
    await removeDir(region.dataDir);
  });
});
