// Benchmark (issue 15): start-up time and idle memory, compiled build against the sources through tsx
// (how `bootstream` ran before the build), in the same run, rounds alternating between the two.
//   npx tsx bench/start.ts [--rounds 3] [--settle 45]
// Per round and variant: a fresh region on a free port, timed from spawn to the first `/healthz` 200
// (polled every 10 ms); its RSS 3 s later ("fresh") and after --settle seconds (V8's memory reducer
// gives back the young generation and unused pages after ~20-40 s of quiet: "settled"); then a rack
// agent connected to it, synced (nothing to fetch), and its RSS 3 s later. Region and rack both idle.
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LAUNCHER, removeDir, startRegion, type RegionProcess } from "../test/helpers/region";
import { startRack } from "../test/helpers/rack";
import { killOnExit, machine, median, sleep, statusMiB, table } from "./lib";

const TSX_ENTRY = fileURLToPath(new URL("./tsx-entry.ts", import.meta.url));
const VARIANTS = {
  // The command as npm installs it (the launcher execs node on bin/bootstream.js).
  compiled: { command: LAUNCHER, args: [] as string[] },
  tsx: { command: process.execPath, args: ["--import", "tsx", TSX_ENTRY] },
};
type Variant = keyof typeof VARIANTS;

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, settle: { type: "string", default: "45" } },
});
const rounds = Math.max(1, Math.min(9, Number(values.rounds)));
const settleMs = Math.max(3, Number(values.settle)) * 1000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Spawn → first /healthz 200, in ms, for a region of this variant on its own port and data dir. */
async function timeToHealthy(variant: Variant): Promise<number> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "bootstream-bench-start-"));
  const { command, args } = VARIANTS[variant];
  const started = performance.now();
  const child = killOnExit(
    spawn(command, [...args, "region"], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        DATA_DIR: dataDir,
        ADMIN_TOKEN: "bench-admin-token-0123456789abcdef0123456789",
        RACK_SECRET: "bench-rack-secret-0123456789abcdef0123456789",
        BOOT_SOURCE_URL: "http://127.0.0.1:9/unreachable/",
        IMPORT_SCHEDULE: "59 59 23 31 12 *",
        LOG_LEVEL: "warn",
      },
      stdio: "ignore",
    }),
  );
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return performance.now() - started;
      if (child.exitCode !== null) throw new Error(`${variant} region exited with ${child.exitCode}`);
      if (performance.now() - started > 60_000) throw new Error(`${variant} region not healthy in 60 s`);
      await sleep(10);
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    await removeDir(dataDir);
  }
}

type Round = { startMs: number; fresh: number; settled: number; rack: number };

async function idleRound(variant: Variant): Promise<Round> {
  const startMs = await timeToHealthy(variant);
  const tsx = { script: TSX_ENTRY, nodeArgs: ["--import", "tsx"] };
  const region: RegionProcess = await startRegion(variant === "tsx" ? tsx : { launcher: true });
  killOnExit(region.child);
  try {
    await sleep(3000);
    const fresh = await statusMiB(region.child.pid!, "VmRSS");
    const rack = await startRack({
      regionUrl: region.url,
      name: `bench-${variant}`,
      env: { RACK_SYNC_SCHEDULE: "0 0 * * * *" },
      ...(variant === "tsx" ? tsx : {}),
    });
    killOnExit(rack.child);
    let rackRss: number;
    try {
      await rack.waitForLog("sync finished", 60_000);
      await sleep(3000);
      rackRss = await statusMiB(rack.child.pid!, "VmRSS");
    } finally {
      await rack.stop();
      await removeDir(rack.dataDir);
    }
    await sleep(Math.max(0, settleMs - 3000));
    const settled = await statusMiB(region.child.pid!, "VmRSS");
    return { startMs, fresh, settled, rack: rackRss };
  } finally {
    await region.stop();
    await removeDir(region.dataDir);
  }
}

const rows: Record<Variant, Round[]> = { compiled: [], tsx: [] };
console.log(`${machine()}; ${rounds} round(s), settle ${settleMs / 1000} s\n`);
for (let round = 0; round < rounds; round++) {
  const order: Variant[] = round % 2 === 0 ? ["compiled", "tsx"] : ["tsx", "compiled"];
  for (const variant of order) {
    const r = await idleRound(variant);
    rows[variant].push(r);
    console.log(
      `round ${round + 1} ${variant}: /healthz 200 after ${r.startMs.toFixed(0)} ms; region RSS fresh ${r.fresh.toFixed(1)} MiB, ` +
        `settled ${r.settled.toFixed(1)} MiB; rack RSS ${r.rack.toFixed(1)} MiB`,
    );
  }
}

const range = (v: Variant, key: keyof Round, digits = 0) => {
  const xs = rows[v].map((r) => r[key]);
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
};
const mb = (v: Variant, key: keyof Round) => {
  const m = median(rows[v].map((r) => r[key]));
  return `${range(v, key)} MiB = ${((m * 2 ** 20) / 1e6).toFixed(0)} MB`;
};
const ratio = median(rows.compiled.map((r) => r.startMs)) / median(rows.tsx.map((r) => r.startMs));
console.log("\nmedians (range) of the rounds\n");
console.log(
  table(
    ["measure", "compiled (bin/bootstream.js)", "tsx (sources)", "target"],
    [
      [
        "region: spawn → /healthz 200 (ms)",
        range("compiled", "startMs"),
        range("tsx", "startMs"),
        `ratio ${ratio.toFixed(2)}`,
      ],
      ["region RSS 3 s after start", mb("compiled", "fresh"), mb("tsx", "fresh"), "< 100 MB"],
      [
        `region RSS after ${settleMs / 1000} s idle`,
        mb("compiled", "settled"),
        mb("tsx", "settled"),
        "< 100 MB",
      ],
      ["rack agent RSS, idle after its first sync", mb("compiled", "rack"), mb("tsx", "rack"), "< 80 MB"],
    ],
  ),
);
