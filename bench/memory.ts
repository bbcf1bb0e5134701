// Issue 15: the region's resident memory through one import's life, as shipped (the `bootstream`
// launcher) against node run on bin/bootstream.js directly (glibc's default malloc thresholds), in
// the same run: idle after reading the mirror's signed catalogue, the import's peak, and after it.
//   npx tsx bench/memory.ts [--rounds 2] [--settle 15]
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine, makeBenchMirror, median, serveInChild, sleep, statusMiB, table } from "./lib";
import { prepareRegion, timeImport } from "./region-import";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "2" }, settle: { type: "string", default: "15" } },
});
const rounds = Math.max(1, Math.min(9, Number(values.rounds)));
const settleMs = Math.max(1, Number(values.settle)) * 1000;
const VARIANTS = { shipped: true, "node bin/bootstream.js": false } as const;
type Variant = keyof typeof VARIANTS;
type Round = { idle: number; peak: number; after: number; cpu: number; seconds: number };

async function anonMiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
  return Number(/^Anonymous:\s+(\d+)/m.exec(text)?.[1] ?? 0) / 1024;
}

async function round(mirrorUrl: string, images: string[], variant: Variant): Promise<Round> {
  const { region, client } = await prepareRegion(mirrorUrl, {}, [], undefined, VARIANTS[variant]);
  const pid = region.child.pid!;
  try {
    await sleep(settleMs);
    const idle = await statusMiB(pid, "VmRSS");
    const measured = await timeImport(region, client, images, {}, { quiet: false });
    await sleep(settleMs);
    const after = await statusMiB(pid, "VmRSS");
    console.log(
      `  ${variant}: idle ${idle.toFixed(0)} MiB, peak ${measured.peakRssMiB.toFixed(0)} MiB, ` +
        `after ${after.toFixed(0)} MiB (anonymous ${(await anonMiB(pid)).toFixed(0)}), ` +
        `import ${measured.seconds.toFixed(2)} s, cpu ${measured.cpuSeconds.toFixed(2)} s`,
    );
    return { idle, peak: measured.peakRssMiB, after, cpu: measured.cpuSeconds, seconds: measured.seconds };
  } finally {
    client.close();
    await region.stop();
    await rm(region.dataDir, { recursive: true, force: true });
  }
}

const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-memory-"));
const server = await serveInChild(dir).catch(async (error: unknown) => {
  await rm(dir, { recursive: true, force: true });
  throw error;
});
try {
  const mirror = await makeBenchMirror(dir);
  console.log(`${machine()}; ${mirror.images.length} images, ${(mirror.bytes / 2 ** 20).toFixed(0)} MiB`);
  const rows = new Map<Variant, Round[]>();
  for (let i = 0; i < rounds; i++)
    for (const variant of Object.keys(VARIANTS) as Variant[]) {
      console.log(`round ${i + 1}`);
      rows.set(variant, [...(rows.get(variant) ?? []), await round(server.url, mirror.images, variant)]);
    }
  const mb = (mib: number) => `${mib.toFixed(0)} MiB (${((mib * 2 ** 20) / 1e6).toFixed(0)} MB)`;
  console.log(
    "\n" +
      table(
        ["median", ...Object.keys(VARIANTS), "target (shipped)"],
        [
          ["idle after reading the signed catalogue", (r: Round) => r.idle, "< 100 MB"] as const,
          ["peak during the import (VmHWM)", (r: Round) => r.peak, "< 150 MB"] as const,
          ["idle after the import", (r: Round) => r.after, "< 100 MB"] as const,
        ].map(([label, pick, target]) => [
          label,
          ...[...rows.values()].map((list) => mb(median(list.map(pick)))),
          target,
        ]),
      ),
  );
  const cpu = [...rows.values()].map((list) => median(list.map((r) => r.cpu)));
  console.log(`\nregion CPU for the import (median): ${cpu.map((c) => `${c.toFixed(2)} s`).join(" / ")}`);
} finally {
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
