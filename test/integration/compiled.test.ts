import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";

/** The command lines of pid and all its descendants, from /proc. */
function processTree(pid: number): string[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const lines: string[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    try {
      lines.push(readFileSync(`/proc/${next}/cmdline`, "utf8").split("\0").join(" ").trim());
    } catch {
      continue;
    }
    queue.push(...(parents.get(next) ?? []));
  }
  return lines;
}

describe("the compiled build", () => {
  let region: RegionProcess;
  beforeAll(async () => {
    region = await startRegion();
  });
  afterAll(async () => {
    await region.stop();
    await removeDir(region.dataDir);
  });

  it("runs the region on plain node: no tsx or esbuild process in its tree", async () => {
    expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    const tree = processTree(region.child.pid!);
    expect(tree.length).toBeGreaterThan(0);
    expect(tree[0]).toMatch(/bin\/bootstream\.js region$/);
    for (const line of tree) expect(line).not.toMatch(/tsx|esbuild/);
    // The dashboard and the signing key are found from the bundle as from the sources.
    expect((await fetch(`${region.url}/`)).headers.get("content-type")).toMatch(/text\/html/);
  });

  it("ships a source map that leads back to the TypeScript sources", () => {
    const map = JSON.parse(
      readFileSync(
        fileURLToPath(new URL("../../apps/server/dist/bootstream.js.map", import.meta.url)),
        "utf8",
      ),
    ) as { sources: string[] };
    expect(map.sources).toContain("../src/cli/main.ts");
    expect(map.sources).toContain("../../../libs/images/src/index.ts");
  });
});
