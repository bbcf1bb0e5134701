// What a build step would change: bundles the server's TypeScript (and the workspace libraries) into one
// ESM file with esbuild (already installed, as tsx's engine), so a region can run on plain `node`
// without tsx's loader thread and on-the-fly compilation. Dependencies stay external, resolved through a
// node_modules symlink next to the bundle. Nothing in the repository changes: it all lives in a temp dir.
import { mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Returns the path of a bundle to run as `node BUNDLE region`. */
export async function bundleServer(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-bundle-"));
  await symlink(join(root, "node_modules"), join(dir, "node_modules"));
  const entry = join(dir, "entry.ts");
  await writeFile(
    entry,
    `import { main } from ${JSON.stringify(join(root, "apps/server/src/cli/main.ts"))};\n` +
      "process.exitCode = await main(process.argv.slice(2));\n",
  );
  const outfile = join(dir, "bootstream.mjs");
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    alias: {
      "@bootstream/images": join(root, "libs/images/src/index.ts"),
      "@bootstream/protocol/client": join(root, "libs/protocol/src/client.ts"),
      "@bootstream/protocol": join(root, "libs/protocol/src/index.ts"),
    },
    logLevel: "error",
  });
  return outfile;
}
