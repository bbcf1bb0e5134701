// The client examples in examples/ (TypeScript, Python, curl), run as real processes against a real
// region that imports from a local mirror: each selects ubuntu/jammy amd64 and follows it to synced.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "@bootstream/protocol";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { gate, type Availability } from "../helpers/services";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const JAMMY = "ubuntu/jammy/amd64";

function probe(command: string, args: string[], what: string): Availability {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 10_000 });
  if (result.error) return { ok: false, reason: `${command}: ${result.error.message}` };
  if (result.status !== 0)
    return { ok: false, reason: `${what}: ${result.stderr.trim().split("\n").at(-1)}` };
  return { ok: true };
}

const python = gate(
  "python-socketio for /usr/bin/python3 (apt-get install python3-socketio python3-websocket python3-requests)",
  probe(PYTHON, ["-c", "import socketio, websocket, requests"], "import socketio"),
);
const curl = gate("curl (apt-get install curl)", probe("curl", ["--version"], "curl --version"));

type Run = { code: number | null; stdout: string; stderr: string };

function run(
  command: string,
  args: string[],
  region: RegionProcess,
  token = region.adminToken,
  timeoutMs = 25_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, BOOTSTREAM_URL: region.url, BOOTSTREAM_TOKEN: token, BOOTSTREAM_TIMEOUT: "20" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function state(region: RegionProcess): Promise<Snapshot> {
  const response = await fetch(`${region.url}/api/v1/state`, {
    headers: { authorization: `Bearer ${region.adminToken}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Snapshot;
}

const EXAMPLES = {
  typescript: {
    command: process.execPath,
    args: (...image: string[]) => ["--import", "tsx", "examples/follow-import.ts", ...image],
    skip: false,
    mustFail: null as string | null,
  },
  python: {
    command: PYTHON,
    args: (...image: string[]) => ["examples/follow_import.py", ...image],
    ...python,
  },
  curl: {
    command: "bash",
    args: (...image: string[]) => ["examples/curl.sh", ...image],
    ...curl,
  },
};

describe("client examples against a real region", () => {
  let mirror: TestMirror;
  const regions: RegionProcess[] = [];

  beforeAll(async () => {
    // Slow enough that the examples see a download in progress, fast enough to stay quick.
    mirror = await startMirror(
      { releases: ["jammy", "noble"], arches: ["amd64"], payloadSize: 256 * 1024 },
      4_000_000,
    );
  });
  afterEach(async () => {
    for (const region of regions.splice(0)) {
      await region.stop();
      await removeDir(region.dataDir);
    }
  });
  afterAll(async () => {
    await mirror?.close();
  });

  for (const [name, example] of Object.entries(EXAMPLES)) {
    it.skipIf(example.skip)(
      `${name}: selects ubuntu/jammy amd64 and follows it until synced (exit 0)`,
      async () => {
        if (example.mustFail) throw new Error(example.mustFail);
        // A fresh region: its own first import (the default ubuntu/noble) is still running when the
        // example saves, so the example must wait for the run that picks its save up.
        const region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
        regions.push(region);

        const result = await run(example.command, example.args("ubuntu/jammy", "amd64"), region);
        expect(result, `${result.stdout}\n${result.stderr}`).toMatchObject({ code: 0 });
        expect(result.stdout).toContain("selection saved as revision");
        expect(result.stdout).toMatch(/ubuntu\/jammy\/amd64: (rack-)?synced/);

        const after = await state(region);
        expect(after.selection.items).toContainEqual({ os: "ubuntu", release: "jammy", arches: ["amd64"] });
        expect(after.images.find((image) => image.id === JAMMY)).toMatchObject({
          state: "synced",
          error: null,
        });

        // A refused save (not offered by the mirror) exits 1 with the reason, and changes nothing.
        const refused = await run(example.command, example.args("ubuntu/focal", "amd64"), region);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain("ubuntu/focal is not offered by the boot source");
        expect((await state(region)).selection).toEqual(after.selection);

        // A wrong token is refused: exit 1, and the reason (`unauthorized`) on stderr.
        const unauthorized = await run(
          example.command,
          example.args("ubuntu/jammy", "amd64"),
          region,
          "wrong",
        );
        expect(unauthorized.code).toBe(1);
        expect(unauthorized.stderr).toContain("unauthorized");
      },
    );
  }
});
