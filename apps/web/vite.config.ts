import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig, type Plugin } from "vite";

const REGION = process.env.BOOTSTREAM_URL ?? "http://127.0.0.1:5240";
/** The dashboard's JS + CSS, gzipped, must stay under this. */
const BUDGET_BYTES = 60 * 1024;

/** Prints the gzipped size of the emitted JS and CSS and fails the build over budget. */
function sizeBudget(limit: number): Plugin {
  return {
    name: "bootstream:size-budget",
    apply: "build",
    generateBundle(_options, bundle) {
      const rows: [string, number, number][] = [];
      for (const file of Object.values(bundle)) {
        if (!/\.(js|css)$/.test(file.fileName)) continue;
        const source = file.type === "chunk" ? file.code : file.source;
        const raw = typeof source === "string" ? Buffer.from(source) : Buffer.from(source);
        rows.push([file.fileName, raw.length, gzipSync(raw, { level: 9 }).length]);
      }
      const total = rows.reduce((sum, [, , gz]) => sum + gz, 0);
      const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`;
      for (const [name, raw, gz] of rows) console.log(`  ${name}  ${kb(raw)} → ${kb(gz)} gzip`);
      console.log(`  JS + CSS gzipped: ${kb(total)} of ${kb(limit)} budget`);
      if (total > limit)
        this.error(`dashboard JS + CSS is ${kb(total)} gzipped, over the ${kb(limit)} budget`);
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  plugins: [svelte(), sizeBudget(BUDGET_BYTES)],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
  server: {
    port: 5173,
    proxy: {
      "/socket.io": { target: REGION, ws: true, changeOrigin: true },
      "/api": { target: REGION, changeOrigin: true },
    },
  },
});
