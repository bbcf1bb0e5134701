#!/usr/bin/env node
// Runs the compiled region, rack agent and CLI (apps/server/dist, built by `npm run build`, which
// `npm ci` runs through `prepare`) on plain node, stack traces mapped back to the TypeScript sources.
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";

// V8 grows the young generation to 2 × 16 MiB while the modules load and keeps it: ~30 MB of a
// process's resident memory (a third of an idle region's) for garbage that dies young anyway.
// Kept at its initial 2 × 1 MiB, the region idles and imports in less memory at no measured cost in
// CPU (docs/benchmarks.md, "Memory"). Set here, at run time, because `node bin/bootstream.js` and
// the npm shim cannot both pass `--max-semi-space-size`; one given to node (on its command line or
// in NODE_OPTIONS) wins.
const nodeFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
if (!nodeFlags.some((flag) => /^--(max-semi-space-size|semi-space-growth-factor)\b/.test(flag)))
  v8.setFlagsFromString("--semi-space-growth-factor=1");

const compiled = new URL("../dist/bootstream.js", import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error("bootstream: not built yet: run `npm run build` (or `npm ci`) in the repository");
  process.exit(1);
}
mapStackTraces(new URL("../dist/", import.meta.url).href);
const { main } = await import(compiled.href);
process.exitCode = await main(process.argv.slice(2));

/**
 * Stack frames in dist/ are shown at their TypeScript source. Not `process.setSourceMapsEnabled`:
 * that parses the source map of every module as it loads, our dependencies' too (TypeORM's hold its
 * whole TypeScript source), ~7 MB of an idle region; here only our own maps are read, on the first
 * stack trace that passes through them.
 */
function mapStackTraces(dist) {
  const maps = new Map();
  const mapOf = (file) => {
    if (!maps.has(file)) {
      let map = null;
      try {
        map = new SourceMap(JSON.parse(readFileSync(fileURLToPath(`${file}.map`), "utf8")));
      } catch {
        // no map (or unreadable): the frame stays as it is
      }
      maps.set(file, map);
    }
    return maps.get(file);
  };
  const frame = (site) => {
    const text = String(site);
    const file = site.getFileName();
    const line = site.getLineNumber();
    const column = site.getColumnNumber();
    if (!file?.startsWith(dist) || line === null || column === null) return text;
    const entry = mapOf(file)?.findEntry(line - 1, column - 1);
    if (!entry?.originalSource) return text;
    // The map names its sources relative to itself (../src/…).
    const url = new URL(entry.originalSource, file);
    const source = url.protocol === "file:" ? fileURLToPath(url) : url.href;
    const at = `${file}:${line}:${column}`;
    const to = `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    return text.includes(at) ? text.replace(at, to) : `${text} (${to})`;
  };
  Error.prepareStackTrace = (error, sites) => {
    let head;
    try {
      head = Error.prototype.toString.call(error);
    } catch {
      head = "<error>";
    }
    return [head, ...sites.map((site) => `    at ${frame(site)}`)].join("\n");
  };
}
