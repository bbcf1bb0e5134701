// Benchmark (issue 14): `bootstream mirror sync` of the bench mirror (~1 GiB over loopback) against
// `curl -s -o` of the same files one after another + `sha256sum` of each (the fair baseline: sync
// verifies every payload), in the same run. Peak RSS of the sync process from /usr/bin/time.
//   npx tsx bench/mirror-sync.ts [--rounds 1]
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { MiB, machine, makeBenchMirror, median, run, serveInChild, table, timed, verdict } from "./lib";

// The command as npm installs it (the launcher execs node on bin/bootstream.js).
const BOOTSTREAM = fileURLToPath(new URL("../node_modules/.bin/bootstream", import.meta.url));
const { values } = parseArgs({ options: { rounds: { type: "string", default: "1" } } });
const rounds = Number(values.rounds);

const root = await mkdtemp(join(tmpdir(), "bootstream-bench-sync-"));
const upstreamDir = join(root, "upstream");
const mirror = await makeBenchMirror(upstreamDir);
const server = await serveInChild(upstreamDir);
const rows: { curl: number; sum: number; ours: number; rssMb: number }[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    const out = join(root, `curl-${round}`);
    await run("mkdir", ["-p", out]);
    const paths = mirror.files.map((_, i) => join(out, `f${i}`));
    const [curl] = await timed(async () => {
      for (let i = 0; i < mirror.files.length; i++)
        await run("curl", ["-s", "-f", "-o", paths[i]!, `${server.url}${mirror.files[i]!.path}`]);
    });
    const [sum] = await timed(async () => {
      for (let i = 0; i < mirror.files.length; i++) {
        const line = await run("sha256sum", [paths[i]!]);
        if (!line.startsWith(mirror.files[i]!.sha256)) throw new Error("curl's copy does not match");
      }
    });
    await rm(out, { recursive: true, force: true });

    const dest = join(root, `sync-${round}`);
    const report = join(root, `time-${round}`);
    const [ours, stdout] = await timed(() =>
      run("/usr/bin/time", [
        "-f",
        "%M",
        "-o",
        report,
        BOOTSTREAM,
        "mirror",
        "sync",
        server.url,
        dest,
        "--keyring",
        "none",
        "--json",
      ]),
    );
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!) as { fetchedBytes: number };
    if (summary.fetchedBytes < mirror.bytes)
      throw new Error(`sync fetched ${summary.fetchedBytes} of ${mirror.bytes} bytes`);
    const rssMb = Number((await readFile(report, "utf8")).trim().split("\n").at(-1)) / 1024;
    await rm(dest, { recursive: true, force: true });
    rows.push({ curl, sum, ours, rssMb });
  }
} finally {
  await server.close();
  await rm(root, { recursive: true, force: true });
}

const m = (key: "curl" | "sum" | "ours" | "rssMb") => median(rows.map((r) => r[key]));
const ratio = m("ours") / (m("curl") + m("sum"));
const s = (n: number) => `${n.toFixed(2)} s`;
console.log(machine());
console.log(
  `${mirror.files.length} files, ${(mirror.bytes / MiB).toFixed(0)} MiB; ${rounds} round(s); medians\n`,
);
console.log(
  table(
    ["what", "value"],
    [
      ["curl -s -o, one file after another", s(m("curl"))],
      ["sha256sum of curl's files", s(m("sum"))],
      ["bootstream mirror sync (process start included)", s(m("ours"))],
      ["sync / (curl + sha256sum) (target ≤ 0.6)", `${ratio.toFixed(2)} ${verdict(ratio <= 0.6)}`],
      ["sync peak RSS (target < 150 MB)", `${m("rssMb").toFixed(0)} MB ${verdict(m("rssMb") < 150)}`],
    ],
  ),
);
