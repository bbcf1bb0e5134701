import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, LAUNCHER, removeDir, startRegion, type RegionProcess } from "../helpers/region";

const DIST = fileURLToPath(new URL("../../apps/server/dist", import.meta.url));

/** The chunk of the build that exports `name`. */
function chunkExporting(name: string): string {
  const chunk = readdirSync(DIST).find(
    (file) =>
      file.endsWith(".js") &&
      new RegExp(`^export \\{[^}]*\\b${name}\\b`, "m").test(readFileSync(path.join(DIST, file), "utf8")),
  );
  if (!chunk) throw new Error(`no chunk exports ${name}`);
  return chunk;
}

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

  it("ships source maps that lead back to the TypeScript sources", () => {
    const sources = new Set(
      readdirSync(DIST)
        .filter((name) => name.endsWith(".js.map"))
        .flatMap(
          (name) =>
            (JSON.parse(readFileSync(path.join(DIST, name), "utf8")) as { sources: string[] }).sources,
        ),
    );
    expect(sources).toContain("../src/cli/main.ts");
    expect(sources).toContain("../../../libs/images/src/store/download.ts");
  });

  it("maps a stack trace through the build to the TypeScript, reading only its own maps", () => {
    // The launcher, then a function of the build called wrongly: its frame must name usage.ts.
    const script = [
      `await import(${JSON.stringify(pathToFileURL(BIN).href)});`,
      `const chunk = ${JSON.stringify(pathToFileURL(path.join(DIST, chunkExporting("wantsHelp"))).href)};`,
      "try { (await import(chunk)).wantsHelp(null); } catch (error) { console.log(error.stack); }",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script, "", "--help"], {
      encoding: "utf8",
    });
    expect(out).toMatch(
      /TypeError: Cannot read properties of null[^\n]*\n\s+at \S*wantsHelp \(\/\S+\/apps\/server\/src\/cli\/usage\.ts:\d+:\d+\)/,
    );
  });
});

describe("the bootstream command (npm's link to bin/bootstream)", () => {
  const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");

  it("execs node on the build, in its own process, with glibc's mmap threshold fixed at 64 KiB", async () => {
    const region = await startRegion({ launcher: true, env: { MALLOC_MMAP_THRESHOLD_: "" } });
    try {
      expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
      const tree = processTree(region.child.pid!);
      // The shell replaced itself: the spawned pid is node, with no shell or second node under it.
      expect(tree).toEqual([
        expect.stringMatching(/^\S*node \S+\/apps\/server\/bin\/bootstream\.js region$/),
      ]);
      expect(environ(region.child.pid!)).toContain("MALLOC_MMAP_THRESHOLD_=65536");
      // npm's link is what was spawned: it leads to the launcher.
      expect(realpathSync(LAUNCHER)).toMatch(/\/apps\/server\/bin\/bootstream$/);
    } finally {
      await region.stop();
      await removeDir(region.dataDir);
    }
  });

  it("leaves an operator's own malloc setting as it is", async () => {
    const region = await startRegion({ launcher: true, env: { MALLOC_MMAP_THRESHOLD_: "131072" } });
    try {
      expect(environ(region.child.pid!)).toContain("MALLOC_MMAP_THRESHOLD_=131072");
    } finally {
      await region.stop();
      await removeDir(region.dataDir);
    }
  });
});

describe("the compiled build's chunks", () => {
  /** npm packages a chunk imports, itself and through the chunks it imports statically. */
  function packagesLoadedBy(chunk: string, seen = new Set<string>()): Set<string> {
    const packages = new Set<string>();
    if (seen.has(chunk)) return packages;
    seen.add(chunk);
    const code = readFileSync(path.join(DIST, chunk), "utf8");
    // Static imports only (`import … from "x"` and `import "x"`); import("x") loads on demand.
    for (const [, specifier] of code.matchAll(
      /^(?:import|export)\s[^;]*?from\s*"([^"]+)";?$|^import\s*"([^"]+)";?$/gms,
    )) {
      if (!specifier) continue;
      if (specifier.startsWith("./"))
        for (const p of packagesLoadedBy(specifier.slice(2), seen)) packages.add(p);
      else if (!specifier.startsWith("node:"))
        packages.add(
          specifier
            .split("/")
            .slice(0, specifier.startsWith("@") ? 2 : 1)
            .join("/"),
        );
    }
    return packages;
  }
  /** The chunk `bootstream.js` imports for a process command (`import("./rack-command-HASH.js")`). */
  function commandChunk(name: string): string {
    const entry = readFileSync(path.join(DIST, "bootstream.js"), "utf8");
    const match = new RegExp(`import\\("\\./(${name}-[A-Z0-9]+\\.js)"\\)`).exec(entry);
    if (!match) throw new Error(`bootstream.js does not import a ${name} chunk`);
    return match[1]!;
  }
  const SERVER_ONLY = [
    "typeorm",
    "better-sqlite3",
    "pg",
    "koa",
    "@koa/router",
    "socket.io",
    "redis",
    "prom-client",
  ];

  it("the CLI's client commands load no server, database or signature code", () => {
    const loaded = packagesLoadedBy("bootstream.js");
    for (const name of [...SERVER_ONLY, "openpgp", "socket.io-client", "undici"])
      expect(loaded).not.toContain(name);
  });

  it("the rack agent and mirror sync load neither the region's server nor its database, nor openpgp", () => {
    for (const command of ["rack-command", "mirror"]) {
      const loaded = packagesLoadedBy(commandChunk(command));
      for (const name of [...SERVER_ONLY, "openpgp", "@socket.io/redis-streams-adapter"])
        expect({ command, loaded: loaded.has(name) }).toEqual({ command, loaded: false });
    }
    expect(packagesLoadedBy(commandChunk("rack-command"))).toContain("socket.io-client");
  });

  it("the region loads its server and database, and Redis and openpgp only when used", () => {
    const loaded = packagesLoadedBy(commandChunk("region-command"));
    for (const name of ["typeorm", "koa", "socket.io", "prom-client"]) expect(loaded).toContain(name);
    for (const name of ["redis", "@socket.io/redis-streams-adapter", "openpgp", "pg"])
      expect(loaded).not.toContain(name);
  });
});
