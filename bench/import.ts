// Benchmark (issue 4): a real region importing 4 images from a loopback mirror, against `curl -o` of the
// same files one after another (+ `sha256sum` of each, the fair comparison: the region verifies).
//   npx tsx bench/import.ts [--rounds 3] [--concurrency N] [--profile] [--bandwidth-limit 100MB/s]
// The region runs compiled (apps/server/bin/bootstream.js), as shipped.
// --concurrency sets the region's DOWNLOAD_CONCURRENCY (default: the region's own default, 4).
// --profile runs the region under --cpu-prof and prints the functions that took the most CPU.
// --bandwidth-limit sets settings.bandwidthLimit before the import (bytes a second, or 100MB/s, 20MiB/s)
// and reports the import's throughput against the cap (issue 15: within 5% of it).
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { removeDir } from "../test/helpers/region";
import {
  command,
  childrenCpuSeconds,
  machine,
  makeBenchMirror,
  median,
  MiB,
  run,
  serveInChild,
  table,
  timed,
  disturbed,
  verdict,
  waitForQuiet,
  withCpu,
  type BenchMirror,
} from "./lib";
import { parseBandwidth } from "@bootstream/images/present";
import { prepareRegion, summariseProfile, timeImport, type RegionImport } from "./region-import";

async function regionRound(
  mirror: BenchMirror,
  server: { url: string; pid: number },
  env: Record<string, string>,
  nodeFlags: string[],
  bandwidthLimit: number | null,
): Promise<RegionImport> {
  const { region, client } = await prepareRegion(server.url, env, nodeFlags);
  try {
    if (bandwidthLimit !== null)
      await command(region.url, region.adminToken, "settings:update", { bandwidthLimit });
    const result = await timeImport(region, client, mirror.images, { mirror: server.pid });
    const stored = await storeFiles(region.dataDir);
    if (stored !== mirror.files.length)
      throw new Error(`the store holds ${stored} files, not ${mirror.files.length}`);
    return result;
  } finally {
    client.close();
    await region.stop();
    await removeDir(region.dataDir);
  }
}

async function storeFiles(dataDir: string): Promise<number> {
  const root = join(dataDir, "store");
  let count = 0;
  for (const sub of await readdir(root)) count += (await readdir(join(root, sub))).length;
  return count;
}

type CurlRound = {
  curl: number;
  sum: number;
  /** `sync -d` of curl's files after it: what making them durable would add (the region fsyncs). */
  sync: number;
  machineBusy: number;
  mirrorCpu: number;
  curlCpu: number;
  foreign: number;
  /** Other sessions took more than 10% of the machine during the curl or the sha256sum. */
  disturbed: boolean;
};

/**
 * `curl -s -o` of each file one after another; then `sync -d` of the files (timed apart, not part of
 * either baseline); then `sha256sum` of each, checked against the stream.
 */
async function curlRound(mirror: BenchMirror, server: { url: string; pid: number }): Promise<CurlRound> {
  const out = await mkdtemp(join(tmpdir(), "bootstream-bench-curl-"));
  const paths = mirror.files.map((_, i) => join(out, String(i)));
  try {
    await waitForQuiet();
    const children0 = await childrenCpuSeconds();
    const curl = await withCpu({ mirror: server.pid }, async () => {
      for (const [i, file] of mirror.files.entries()) {
        await run("curl", ["-s", "-f", "-o", paths[i]!, `${server.url}${file.path}`]);
      }
    });
    const curlCpu = (await childrenCpuSeconds()) - children0;
    const [sync] = await timed(() => run("sync", ["-d", ...paths]));
    await waitForQuiet();
    const summed = await withCpu({}, async () => {
      for (const [i, file] of mirror.files.entries()) {
        const line = await run("sha256sum", [paths[i]!]);
        if (!line.startsWith(file.sha256)) throw new Error(`curl's copy of ${file.path} does not match`);
      }
    });
    return {
      curl: curl.seconds,
      sum: summed.seconds,
      sync,
      machineBusy: curl.machineBusy,
      mirrorCpu: curl.cpu["mirror"]!,
      curlCpu,
      foreign: curl.foreign,
      disturbed: disturbed(curl.foreign, curl.seconds) || disturbed(summed.foreign, summed.seconds),
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      concurrency: { type: "string" },
      profile: { type: "boolean", default: false },
      "bandwidth-limit": { type: "string" },
    },
  });
  const rounds = Math.max(1, Math.min(9, Number(values.rounds)));
  const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-mirror-"));
  const profileDir = values.profile ? await mkdtemp(join(tmpdir(), "bootstream-bench-prof-")) : null;
  const env: Record<string, string> = {};
  if (values.concurrency) env["DOWNLOAD_CONCURRENCY"] = values.concurrency;
  const nodeFlags = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  let server: Awaited<ReturnType<typeof serveInChild>> | null = null;
  const cap = values["bandwidth-limit"];
  const bandwidthLimit = cap === undefined ? null : parseBandwidth(cap);
  try {
    const madeIn = performance.now();
    const mirror = await makeBenchMirror(dir);
    console.log(
      `mirror: ${mirror.images.length} images (${mirror.images.join(", ")}), ${mirror.files.length} distinct files, ` +
        `${(mirror.bytes / MiB).toFixed(0)} MiB; ${mirror.sharedSquashfs.path} shared by ${mirror.sharedSquashfs.by.join(" and ")} ` +
        `(made in ${((performance.now() - madeIn) / 1000).toFixed(1)} s)`,
    );
    console.log(
      `${machine()}; region DOWNLOAD_CONCURRENCY=${values.concurrency ?? "default (4)"}; ` +
        `region compiled (bin/bootstream.js); bandwidth cap ${bandwidthLimit === null ? "none" : `${(bandwidthLimit / 1e6).toFixed(1)} MB/s`}\n`,
    );
    server = await serveInChild(dir);

    const rows: { region: RegionImport; curl: CurlRound }[] = [];
    // A round that other sessions disturbed (>10% of the machine) is run again, at most `rounds` extra times.
    for (let attempt = 0, round = 0; round < rounds && attempt < 2 * rounds; attempt++) {
      const region = await regionRound(mirror, server, env, nodeFlags, bandwidthLimit);
      const curl = await curlRound(mirror, server);
      const noisy = curl.disturbed || disturbed(region.foreign, region.seconds);
      if (noisy && attempt + 1 < 2 * rounds) {
        console.log(
          `  (round disturbed by other sessions: region ${region.foreign.toFixed(2)} s, run again)`,
        );
        continue;
      }
      round++;
      rows.push({ region, curl });
      console.log(
        `round ${round}${noisy ? " (disturbed)" : ""}: region ${region.seconds.toFixed(2)} s (cpu ${region.cpuSeconds.toFixed(2)} s: ` +
          `main thread ${region.mainThreadCpu.toFixed(2)} s, other threads ${region.otherThreadsCpu.toFixed(2)} s; ` +
          `mirror cpu ${region.otherCpu["mirror"]!.toFixed(2)} s, machine ${(100 * region.machineBusy).toFixed(0)}% busy, ` +
          `other sessions ${region.foreign.toFixed(2)} s, idle RSS ${region.idleRssMiB.toFixed(0)} MiB, peak ${region.lifePeakRssMiB.toFixed(0)} MiB); ` +
          `curl ${curl.curl.toFixed(2)} s (curl cpu ${curl.curlCpu.toFixed(2)} s, mirror cpu ${curl.mirrorCpu.toFixed(2)} s, ` +
          `machine ${(100 * curl.machineBusy).toFixed(0)}% busy, other sessions ${curl.foreign.toFixed(2)} s), sync -d ${curl.sync.toFixed(2)} s, sha256sum ${curl.sum.toFixed(2)} s`,
      );
    }

    const med = (f: (r: (typeof rows)[number]) => number) => median(rows.map(f));
    const regionS = med((r) => r.region.seconds);
    const curlS = med((r) => r.curl.curl);
    const sumS = med((r) => r.curl.sum);
    const bothS = med((r) => r.curl.curl + r.curl.sum);
    const syncS = med((r) => r.curl.sync);
    const peak = Math.max(...rows.map((r) => r.region.lifePeakRssMiB));
    const importPeak = med((r) => r.region.peakRssMiB);
    const idle = med((r) => r.region.idleRssMiB);
    const mibs = (s: number) => `${(mirror.bytes / MiB / s).toFixed(0)} MiB/s`;
    const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
    const ratioBoth = regionS / bothS;
    const ratioCurl = regionS / curlS;
    console.log(
      `\nmedian of ${rows.length} round(s), ${(mirror.bytes / MiB).toFixed(0)} MiB in ${mirror.files.length} files\n`,
    );
    console.log(
      table(
        ["measure", "value", "target"],
        [
          ["region: import:start → all 4 synced", `${regionS.toFixed(2)} s (${mibs(regionS)})`, ""],
          ["curl -s -o, each file in turn", `${curlS.toFixed(2)} s (${mibs(curlS)})`, ""],
          ["sha256sum of each", `${sumS.toFixed(2)} s`, ""],
          ["curl + sha256sum", `${bothS.toFixed(2)} s`, ""],
          ...(bandwidthLimit === null
            ? []
            : [
                [
                  "region throughput / bandwidth cap",
                  `${(mirror.bytes / regionS / 1e6).toFixed(1)} / ${(bandwidthLimit / 1e6).toFixed(1)} MB/s = ${(mirror.bytes / regionS / bandwidthLimit).toFixed(3)}`,
                  `within 5%: ${verdict(Math.abs(mirror.bytes / regionS / bandwidthLimit - 1) <= 0.05)}`,
                ],
              ]),
          ["region / (curl + sha256sum)", ratioBoth.toFixed(2), `≤ 0.6: ${verdict(ratioBoth <= 0.6)}`],
          ["region / curl", ratioCurl.toFixed(2), `≤ 1.1: ${verdict(ratioCurl <= 1.1)}`],
          [
            "region peak RSS, whole life (VmHWM, max of rounds)",
            `${peak.toFixed(0)} MiB (${((peak * MiB) / 1e6).toFixed(0)} MB)`,
            `< 150 MB: ${verdict(peak * MiB < 150e6)} (issue 4: < 200 MB)`,
          ],
          [
            "region RSS idle before the import / peak during it",
            `${idle.toFixed(0)} / ${importPeak.toFixed(0)} MiB`,
            "",
          ],
          [
            "region CPU during the import: main thread / other threads",
            `${med((r) => r.region.mainThreadCpu).toFixed(2)} s / ${med((r) => r.region.otherThreadsCpu).toFixed(2)} s`,
            "",
          ],
          [
            "CPU during the import: region / mirror server / machine busy",
            `${med((r) => r.region.cpuSeconds).toFixed(2)} s / ${med((r) => r.region.otherCpu["mirror"]!).toFixed(2)} s / ${pct(med((r) => r.region.machineBusy))}`,
            "",
          ],
          [
            "CPU during curl: curl / mirror server / machine busy",
            `${med((r) => r.curl.curlCpu).toFixed(2)} s / ${med((r) => r.curl.mirrorCpu).toFixed(2)} s / ${pct(med((r) => r.curl.machineBusy))}`,
            "",
          ],
          ["sync -d of curl's files afterwards (not in the baselines)", `${syncS.toFixed(2)} s`, ""],
          [
            "region / (curl + sync -d): against an equally durable copy",
            (regionS / med((r) => r.curl.curl + r.curl.sync)).toFixed(2),
            "(for reading)",
          ],
        ],
      ),
    );
    if (profileDir) {
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (1 is tsx's loader).
      const profiles = (await readdir(profileDir)).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort();
      for (const file of profiles) {
        console.log(`\nregion CPU profile ${file}: top self time`);
        const window = rows[profiles.indexOf(file)]!.region.seconds + 0.3;
        for (const line of await summariseProfile(join(profileDir, file), window)) console.log(`  ${line}`);
      }
      console.log(`\nprofiles kept in ${profileDir}`);
    }
  } finally {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
