// Vitest setup file: under `npm test` (COVERAGE=1) every process a test spawns (regions, racks, CLI
// runs: the compiled apps/server/dist and its source maps) inherits NODE_V8_COVERAGE and
// writes its V8 coverage to coverage/children when it exits; scripts/coverage.mjs maps it back to
// the TypeScript and merges it with the in-process coverage. Set here, inside the test worker, so
// the worker itself is not profiled twice (its own coverage comes from @vitest/coverage-v8).
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll } from "vitest";

const dir = fileURLToPath(new URL("../../coverage/children", import.meta.url));
// The build: dist/bootstream.js and its chunks (scripts/build-server.mjs).
const distUrl = `${pathToFileURL(fileURLToPath(new URL("../../apps/server/dist", import.meta.url))).href}/`;

if (process.env.COVERAGE === "1" && !process.env.NODE_V8_COVERAGE) {
  process.env.NODE_V8_COVERAGE = dir;
  // A dump is ~9 MB (every script the process loaded, and the build's source maps): keep only the
  // build's scripts and their line lengths (~0.2 MB) once this file's processes have exited.
  afterAll(compact);
}

type Dump = {
  result: { url: string }[];
  "source-map-cache"?: Record<string, { lineLengths?: number[] }>;
};

async function compact(): Promise<void> {
  for (const name of await readdir(dir).catch(() => [])) {
    if (!name.startsWith("coverage-") || !name.endsWith(".json")) continue;
    const file = path.join(dir, name);
    let dump: Dump;
    try {
      dump = JSON.parse(await readFile(file, "utf8")) as Dump;
    } catch {
      continue; // still being written by a process exiting now: the next file's pass takes it
    }
    const result = dump.result.filter((entry) => entry.url.startsWith(distUrl));
    const cache: Record<string, { lineLengths: number[] }> = {};
    for (const { url } of result) {
      const lineLengths = dump["source-map-cache"]?.[url]?.lineLengths;
      if (lineLengths) cache[url] = { lineLengths };
    }
    const temp = path.join(dir, `.${name}.${process.pid}.tmp`);
    if (result.length > 0) {
      const kept = { result, "source-map-cache": cache };
      await writeFile(temp, JSON.stringify(kept));
      // Renamed out of the pattern above (a process writes only coverage-*.json): compacted once.
      await rename(temp, path.join(dir, `bundle-${name}`));
    }
    await rm(file, { force: true });
  }
}
