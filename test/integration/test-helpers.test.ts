import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { removeDir, startRegion } from "../helpers/region";

/** Whether a process with this pid still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startRegion", () => {
  it("kills a child that does not listen in time and reports what it printed", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bootstream-helper-"));
    // A "region" that prints a line and then never listens.
    const script = path.join(dir, "silent.mjs");
    await writeFile(script, 'console.log("starting, never listening");\nsetInterval(() => {}, 1000);\n');
    try {
      const error = await startRegion({ script, dataDir: dir, startTimeoutMs: 1000 }).then(
        () => null,
        (caught: unknown) => caught as Error,
      );
      expect(error?.message).toMatch(/did not listen within 1000 ms \(pid \d+ killed/);
      expect(error?.message).toContain("starting, never listening");
      const pid = Number(/pid (\d+)/.exec(error!.message)![1]);
      // The rejection comes after the exit: the process is gone by then.
      expect(alive(pid)).toBe(false);
    } finally {
      await removeDir(dir);
    }
  });
});
