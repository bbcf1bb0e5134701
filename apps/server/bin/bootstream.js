#!/usr/bin/env node
// Runs the compiled region, rack agent and CLI (apps/server/dist, built by `npm run build`, which
// `npm ci` runs through `prepare`) on plain node, stack traces mapped back to the TypeScript sources.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

process.setSourceMapsEnabled(true);
const compiled = new URL("../dist/bootstream.js", import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error("bootstream: not built yet: run `npm run build` (or `npm ci`) in the repository");
  process.exit(1);
}
const { main } = await import(compiled.href);
process.exitCode = await main(process.argv.slice(2));
