// Vitest global setup: compiles the server before any test spawns `bootstream` (test/helpers/region.ts,
// rack.ts), so spawned regions and racks always run the compiled build of the sources under test.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../../scripts/build-server.mjs", import.meta.url))],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
}
