// Compiles the region, rack agent and CLI (apps/server/src/cli/main.ts and everything it imports,
// the workspace libraries included) into one ESM file, apps/server/dist/bootstream.js, with a source
// map, for apps/server/bin/bootstream.js to run on plain node. npm dependencies stay external
// (native better-sqlite3 and pg among them), resolved from node_modules as usual.
// Plain JavaScript so it runs before anything is compiled: `npm ci` runs it through `prepare`.
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = path.join(root, "apps/server/dist");
const outfile = path.join(outdir, "bootstream.js");

const result = await build({
  entryPoints: [path.join(root, "apps/server/src/cli/main.ts")],
  outfile,
  bundle: true,
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

// Write beside and rename: a region started while another build runs never reads half a file.
await mkdir(outdir, { recursive: true });
for (const file of result.outputFiles) {
  const temp = `${file.path}.${process.pid}.tmp`;
  await writeFile(temp, file.contents);
  await rename(temp, file.path);
}
console.log(`built ${path.relative(root, outfile)}`);
