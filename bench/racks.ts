// Benchmark (issue 5): three real rack processes syncing ~1 GiB of new files from the region at once,
// against one `curl` of the same bytes from the region's /files, in the same run.
//   npx tsx bench/racks.ts [--rounds 3] [--racks 3]
//
// Each round: a fresh region; three racks started and connected while it holds nothing (so their
// start-up, a second of CPU each, is not part of the measure), then paused with SIGSTOP; the region
// imports the issue-4 mirror (4 images, 11 files, 1088 MiB); the racks resume with SIGCONT at the same
// instant and sync it all. Then one curl fetches the same 11 files from /files, one after another.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { removeDir } from "../test/helpers/region";
import { startRack, type RackProcess } from "../test/helpers/rack";
import {
  childrenCpuSeconds,
  killOnExit,
  machine,
  makeBenchMirror,
  median,
  MiB,
  run,
  serveInChild,
  sleep,
  statusMiB,
  table,
  waitForQuiet,
  disturbed,
  busiestThreads,
  threadCpu,
  threadCpuSeconds,
  verdict,
  withCpu,
  type BenchMirror,
} from "./lib";
import { prepareRegion, timeImport, waitFor, type Region } from "./region-import";

const RACK_SECRET = "test-rack-secret-0123456789abcdef0123456789";
const SYNC_TIMEOUT_MS = 300_000;

type Round = {
  importSeconds: number;
  racks: {
    seconds: number;
    /** From the first rack's "sync started" to the last one's "sync finished", by their own clocks. */
    logSeconds: number;
    perRack: number[];
    /** How many syncs each rack ran to fetch everything (see round()). */
    syncsPerRack: number[];
    bytes: number;
    regionCpu: number;
    regionMainCpu: number;
    /** CPU seconds of the rack processes together, and of their main threads. */
    racksCpu: number;
    racksMainCpu: number;
    /** The region's busiest threads over the window (see busiestThreads). */
    threads: string;
    foreign: number;
    machineBusy: number;
    /** Each rack's RSS a few seconds after its sync, and its peak (VmHWM), MiB. */
    rssAfter: number[];
    rssPeak: number[];
  };
  curl: {
    seconds: number;
    bytes: number;
    regionCpu: number;
    regionMainCpu: number;
    threads: string;
    curlCpu: number;
    foreign: number;
    machineBusy: number;
  };
};

type LogLine = { msg: string; time: string; [key: string]: unknown };

async function waitForLogs(
  rack: RackProcess,
  predicate: (line: LogLine) => boolean,
  after: number,
  timeoutMs: number,
  what: string,
): Promise<LogLine> {
  const started = Date.now();
  for (;;) {
    const hit = (rack.logs() as LogLine[]).slice(after).find(predicate);
    if (hit) return hit;
    if (Date.now() - started > timeoutMs)
      throw new Error(`rack ${rack.name}: no ${what} within ${timeoutMs} ms:\n${rack.output().slice(-3000)}`);
    if (rack.child.exitCode !== null)
      throw new Error(`rack ${rack.name} exited:\n${rack.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function round(
  mirror: BenchMirror,
  server: { url: string; pid: number },
  rackCount: number,
): Promise<Round> {
  const { region, client } = await prepareRegion(server.url, {});
  const racks: RackProcess[] = [];
  try {
    // Racks start and connect while the region holds nothing synced: their first sync is empty.
    for (let i = 1; i <= rackCount; i++) {
      const rack = await startRack({
        regionUrl: region.url,
        name: `bench-rack-${i}`,
        secret: RACK_SECRET,
        env: { RACK_SYNC_SCHEDULE: "*/5 * * * *" },
      });
      killOnExit(rack.child);
      racks.push(rack);
    }
    for (const rack of racks) await rack.waitForLog("sync finished", 60_000);
    await waitForQuiet();
    for (const rack of racks) rack.child.kill("SIGSTOP");
    const marks = racks.map((rack) => rack.logs().length);

    // The import, while the racks are paused (they would start pulling each image as it lands).
    // Kept short: a rack paused longer than the region's ping timeout (15 s) reconnects on resume.
    const imported = await timeImport(
      region,
      client,
      mirror.images,
      { mirror: server.pid },
      { quiet: false },
    );

    await waitForQuiet(10_000);
    // On resume a rack reads the manifests queued while it was paused: its first sync may cover an
    // earlier generation and a second one the rest. Done when its syncs since resume fetched every file.
    const done = (rack: RackProcess, i: number) =>
      (rack.logs() as LogLine[]).slice(marks[i]).filter((line) => line.msg === "sync finished");
    const fetched = (lines: LogLine[]) => lines.reduce((n, line) => n + Number(line["downloaded"] ?? 0), 0);
    const threads0 = await threadCpu(region.child.pid!);
    const rackPids = Object.fromEntries(racks.map((rack) => [rack.name, rack.child.pid!]));
    const rackThreads0 = await Promise.all(racks.map((rack) => threadCpuSeconds(rack.child.pid!)));
    const synced = await withCpu({ region: region.child.pid!, ...rackPids }, async () => {
      for (const rack of racks) rack.child.kill("SIGCONT");
      await Promise.all(
        racks.map((rack, i) =>
          waitForLogs(
            rack,
            () => fetched(done(rack, i)) >= mirror.files.length,
            marks[i]!,
            SYNC_TIMEOUT_MS,
            `syncs of ${mirror.files.length} files`,
          ),
        ),
      );
    });
    const threads1 = await threadCpu(region.child.pid!);
    const rackThreads1 = await Promise.all(racks.map((rack) => threadCpuSeconds(rack.child.pid!)));
    const rackMainCpu = rackThreads1.reduce((n, t, i) => n + t.main - rackThreads0[i]!.main, 0);
    const finished = racks.map((rack, i) => done(rack, i));
    const bytes = finished.flat().reduce((n, line) => n + Number(line["bytesFetched"]), 0);
    if (bytes !== rackCount * mirror.bytes)
      throw new Error(`racks fetched ${bytes} bytes, not ${rackCount} × ${mirror.bytes}`);
    const starts = racks.map((rack, i) =>
      Date.parse((rack.logs() as LogLine[]).slice(marks[i]).find((l) => l.msg === "sync started")!.time),
    );
    // Log times are ISO 8601 (pino's isoTime): milliseconds since the epoch for the arithmetic.
    const ends = finished.map((lines) => Math.max(...lines.map((line) => Date.parse(line.time))));
    const syncsPerRack = finished.map((lines) => lines.length);
    await waitFor(
      client,
      (s) => mirror.images.every((id) => s.images.get(id)?.state === "rack-synced"),
      30_000,
      "rack-synced",
    );
    // Idle again: the agent lets go of what the sync held a second after it (src/memory.ts).
    await sleep(3000);
    const rssAfter = await Promise.all(racks.map((rack) => statusMiB(rack.child.pid!, "VmRSS")));
    const rssPeak = await Promise.all(racks.map((rack) => statusMiB(rack.child.pid!, "VmHWM")));

    const curl = await curlFromRegion(region, mirror);
    return {
      importSeconds: imported.seconds,
      racks: {
        seconds: synced.seconds,
        logSeconds: (Math.max(...ends) - Math.min(...starts)) / 1000,
        perRack: ends.map((end, i) => (end - starts[i]!) / 1000),
        syncsPerRack,
        bytes,
        regionCpu: synced.cpu["region"]!,
        racksCpu: racks.reduce((n, rack) => n + synced.cpu[rack.name]!, 0),
        racksMainCpu: rackMainCpu,
        regionMainCpu: threads1.get(region.child.pid!)! - threads0.get(region.child.pid!)!,
        threads: busiestThreads(region.child.pid!, threads0, threads1),
        foreign: synced.foreign,
        machineBusy: synced.machineBusy,
        rssAfter,
        rssPeak,
      },
      curl,
    };
  } finally {
    for (const rack of racks) {
      rack.child.kill("SIGCONT");
      await rack.stop();
      await rm(rack.dataDir, { recursive: true, force: true });
    }
    client.close();
    await region.stop();
    await removeDir(region.dataDir);
  }
}

/** One curl process fetching every file from GET /files/:sha256, one after another, to disk. */
async function curlFromRegion(region: Region, mirror: BenchMirror): Promise<Round["curl"]> {
  const out = await mkdtemp(join(tmpdir(), "bootstream-bench-curl-"));
  try {
    const args = ["-s", "-f", "-H", `Authorization: Bearer ${RACK_SECRET}`];
    for (const [i, file] of mirror.files.entries())
      args.push("-o", join(out, String(i)), `${region.url}/files/${file.sha256}`);
    await waitForQuiet(30_000);
    const threads0 = await threadCpu(region.child.pid!);
    const children0 = await childrenCpuSeconds();
    const measured = await withCpu({ region: region.child.pid! }, () => run("curl", args));
    const curlCpu = (await childrenCpuSeconds()) - children0;
    const threads1 = await threadCpu(region.child.pid!);
    return {
      seconds: measured.seconds,
      bytes: mirror.bytes,
      regionCpu: measured.cpu["region"]!,
      regionMainCpu: threads1.get(region.child.pid!)! - threads0.get(region.child.pid!)!,
      threads: busiestThreads(region.child.pid!, threads0, threads1),
      curlCpu,
      foreign: measured.foreign,
      machineBusy: measured.machineBusy,
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: "string", default: "3" }, racks: { type: "string", default: "3" } },
  });
  const rounds = Math.max(1, Math.min(9, Number(values.rounds)));
  const rackCount = Math.max(1, Math.min(8, Number(values.racks)));
  const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-mirror-"));
  let server: Awaited<ReturnType<typeof serveInChild>> | null = null;
  try {
    const mirror = await makeBenchMirror(dir);
    console.log(
      `region holds ${mirror.images.length} images, ${mirror.files.length} files, ${(mirror.bytes / MiB).toFixed(0)} MiB; ` +
        `${rackCount} racks; ${machine()}\n`,
    );
    server = await serveInChild(dir);
    const rows: Round[] = [];
    // A round that other sessions disturbed (>10% of the machine) is run again, at most `rounds` extra times.
    for (let attempt = 0; rows.length < rounds && attempt < 2 * rounds; attempt++) {
      const r = await round(mirror, server, rackCount);
      const noisy = disturbed(r.racks.foreign, r.racks.seconds) || disturbed(r.curl.foreign, r.curl.seconds);
      if (noisy && attempt + 1 < 2 * rounds) {
        console.log(
          `  (round disturbed by other sessions: ${r.racks.foreign.toFixed(2)} s / ${r.curl.foreign.toFixed(2)} s of CPU; run again)`,
        );
        continue;
      }
      rows.push(r);
      console.log(
        `round ${rows.length}${noisy ? " (disturbed)" : ""}: import ${r.importSeconds.toFixed(2)} s; racks ${r.racks.seconds.toFixed(2)} s ` +
          `(by their logs ${r.racks.logSeconds.toFixed(2)} s, each ${r.racks.perRack.map((s) => s.toFixed(2)).join("/")} s ` +
          `in ${r.racks.syncsPerRack.join("/")} syncs; RSS after ${r.racks.rssAfter.map((m) => m.toFixed(0)).join("/")} MiB, ` +
          `peak ${r.racks.rssPeak.map((m) => m.toFixed(0)).join("/")} MiB), ` +
          `region cpu ${r.racks.regionCpu.toFixed(2)} s (threads: ${r.racks.threads}), racks cpu ${r.racks.racksCpu.toFixed(2)} s (main threads ${r.racks.racksMainCpu.toFixed(2)} s), other sessions ${r.racks.foreign.toFixed(2)} s; ` +
          `curl ${r.curl.seconds.toFixed(2)} s, region cpu ${r.curl.regionCpu.toFixed(2)} s (threads: ${r.curl.threads}), other sessions ${r.curl.foreign.toFixed(2)} s`,
      );
    }
    const med = (f: (r: Round) => number) => median(rows.map(f));
    const racksS = med((r) => r.racks.seconds);
    const curlS = med((r) => r.curl.seconds);
    const racksBytes = rows[0]!.racks.bytes;
    const mib = (m: number) => `${m.toFixed(0)} MiB (${((m * MiB) / 1e6).toFixed(0)} MB)`;
    const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;
    const racksCpu = med((r) => r.racks.regionCpu);
    const curlCpu = med((r) => r.curl.regionCpu);
    const perGb = rows.map((r) => r.racks.racksCpu / (r.racks.bytes / 1e9));
    const rackPerGb = median(perGb);
    const rackPerGbRange = `${Math.min(...perGb).toFixed(2)}–${Math.max(...perGb).toFixed(2)}`;
    console.log(`\nmedian of ${rows.length} round(s)\n`);
    console.log(
      table(
        ["", `${rackCount} racks at once`, "one curl"],
        [
          [
            "bytes moved",
            `${rackCount} × ${(mirror.bytes / MiB).toFixed(0)} MiB`,
            `${(mirror.bytes / MiB).toFixed(0)} MiB`,
          ],
          ["wall time", `${racksS.toFixed(2)} s`, `${curlS.toFixed(2)} s`],
          ["aggregate throughput", mbps(racksBytes, racksS), mbps(mirror.bytes, curlS)],
          [
            "slowest / fastest rack",
            `${med((r) => Math.max(...r.racks.perRack)).toFixed(2)} / ${med((r) => Math.min(...r.racks.perRack)).toFixed(2)} s`,
            "",
          ],
          [
            "region CPU (utime+stime)",
            `${racksCpu.toFixed(2)} s (${((100 * racksCpu) / racksS).toFixed(0)}% of a core)`,
            `${curlCpu.toFixed(2)} s (${((100 * curlCpu) / curlS).toFixed(0)}% of a core)`,
          ],
          [
            "of which on its main thread",
            `${med((r) => r.racks.regionMainCpu).toFixed(2)} s`,
            `${med((r) => r.curl.regionMainCpu).toFixed(2)} s`,
          ],
          [
            "region CPU per GB served",
            `${(racksCpu / (racksBytes / 1e9)).toFixed(2)} s`,
            `${(curlCpu / (mirror.bytes / 1e9)).toFixed(2)} s`,
          ],
          [
            "CPU of the clients (racks together / curl)",
            `${med((r) => r.racks.racksCpu).toFixed(2)} s`,
            `${med((r) => r.curl.curlCpu).toFixed(2)} s`,
          ],
          [
            "rack CPU per GB synced (target ≤ 1.5 s) / curl CPU per GB",
            `${rackPerGb.toFixed(2)} s (rounds ${rackPerGbRange}) ${verdict(rackPerGb <= 1.5)}`,
            `${(med((r) => r.curl.curlCpu) / (mirror.bytes / 1e9)).toFixed(2)} s`,
          ],
          [
            "rack RSS idle after its sync (target < 80 MB) / at its peak",
            `${mib(med((r) => Math.max(...r.racks.rssAfter)))} ${verdict(med((r) => Math.max(...r.racks.rssAfter)) * MiB < 80e6)} / ${mib(med((r) => Math.max(...r.racks.rssPeak)))}`,
            "",
          ],
          [
            "machine busy (2 cores)",
            `${(100 * med((r) => r.racks.machineBusy)).toFixed(0)}%`,
            `${(100 * med((r) => r.curl.machineBusy)).toFixed(0)}%`,
          ],
        ],
      ),
    );
  } finally {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
