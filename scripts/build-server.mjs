// Compiles the region, rack agent and CLI (apps/server/src/cli/main.ts and everything it imports,
// the workspace libraries included) to ESM in apps/server/dist, with source maps, for
// apps/server/bin/bootstream.js to run on plain node. npm dependencies stay external (native
// better-sqlite3 and pg among them), resolved from node_modules as usual.
//
// Split into chunks: the entry, dist/bootstream.js, holds the CLI; each process command main.ts
// imports lazily (region, rack, mirror, demo) is its own chunk, with the code they share in shared
// chunks. An npm package is imported by the chunks that use it, so `bootstream rack` and
// `bootstream mirror sync` never load TypeORM, Koa, Socket.IO's server or the database drivers, and
// `bootstream status` none of them (one bundle hoists every import to its top: all load at start).
// Every chunk sits in dist/ itself, one level below apps/server, as src/paths.ts expects.
// Plain JavaScript so it runs before anything is compiled: `npm ci` runs it through `prepare`.
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = path.join(root, "apps/server/dist");
const entry = path.join(outdir, "bootstream.js");
// Chunks of an earlier build are removed only once this old: a process started from the earlier
// entry a moment ago may still import its chunks.
const STALE_MS = 10 * 60 * 1000;

const result = await build({
  entryPoints: { bootstream: path.join(root, "apps/server/src/cli/main.ts") },
  outdir,
  bundle: true,
  splitting: true,
  chunkNames: "[name]-[hash]",
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  // The workspace libraries export TypeScript sources: compile them into the bundle.
  alias: {
    "@bootstream/images/present": path.join(root, "libs/images/src/present/index.ts"),
    "@bootstream/images": path.join(root, "libs/images/src/index.ts"),
    "@bootstream/protocol/client": path.join(root, "libs/protocol/src/client.ts"),
    "@bootstream/protocol": path.join(root, "libs/protocol/src/index.ts"),
  },
  sourcemap: "linked",
  sourcesContent: false,
  // Keeps class and function names in stack traces and logs.
  keepNames: true,
  write: false,
  logLevel: "warning",
});

// Write beside and rename, chunks (content-hashed names) before the entry that names them: a region
// started while another build runs never reads half a file or an entry whose chunks are missing.
await mkdir(outdir, { recursive: true });
const isEntry = (file) => file.path === entry || file.path === `${entry}.map`;
const ordered = [
  ...result.outputFiles.filter((file) => !isEntry(file)),
  ...result.outputFiles.filter(isEntry),
];
for (const file of ordered) {
  const temp = `${file.path}.${process.pid}.tmp`;
  await writeFile(temp, file.contents);
  await rename(temp, file.path);
}
const written = new Set(result.outputFiles.map((file) => path.basename(file.path)));
for (const name of await readdir(outdir)) {
  if (written.has(name) || !/\.js(\.map)?$/.test(name)) continue;
  const file = path.join(outdir, name);
  const info = await stat(file).catch(() => null);
  if (info && Date.now() - info.mtimeMs > STALE_MS) await rm(file, { force: true });
}
console.log(`built ${path.relative(root, entry)} and ${written.size / 2 - 1} chunks`);
