// Loopback throughput of downloadFile against `curl -o` (+ `sha256sum`, the fair comparison: we verify),
// through its own HTTP/1.1 client (the default for http:) and through undici (directHttp: false).
//   npx tsx bench/download.ts [--mib 512] [--rounds 5]
// The file is served by the fault server in a child process, so the server's CPU and memory are not ours.
import { spawn, fork, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ContentStore, createDownloadAgent, downloadFile } from "../libs/images/src/store";
import { FaultServer } from "../test/fixtures/fault-server";

const MiB = 1024 * 1024;

type Row = {
  curl: number;
  sum: number;
  ours: number;
  undici: number;
  curlCpu: number;
  sumCpu: number;
  oursCpu: number;
  undiciCpu: number;
};

async function serve(path: string): Promise<void> {
  const server = await FaultServer.start();
  await server.addDiskFile("/file", path);
  process.send?.({ origin: server.origin });
  process.on("disconnect", () => void server.close().then(() => process.exit(0)));
}

/** Writes `mib` MiB of deterministic, incompressible bytes; resolves with their sha256. */
async function makeFile(path: string, mib: number): Promise<string> {
  const block = Buffer.allocUnsafe(MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < MiB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  const hash = createHash("sha256");
  // One buffer, rewritten after each write lands: the generator must not inflate the RSS we report.
  const out = await open(path, "w");
  try {
    for (let i = 0; i < mib; i++) {
      block.writeUInt32LE(i, 0); // no two MiB alike
      hash.update(block);
      await out.write(block);
    }
  } finally {
    await out.close();
  }
  return hash.digest("hex");
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

/** Runs cmd under /usr/bin/time: its stdout and the CPU seconds (user + sys) it used. */
async function runCpu(
  cmd: string,
  args: string[],
  scratch: string,
): Promise<{ stdout: string; cpu: number }> {
  const report = `${scratch}.time`;
  const stdout = await run("/usr/bin/time", ["-f", "%U %S", "-o", report, cmd, ...args]);
  const [user = 0, sys = 0] = (await readFile(report, "utf8")).trim().split(/\s+/).map(Number);
  await rm(report);
  return { stdout, cpu: user + sys };
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [(performance.now() - start) / 1000, value];
}

function printTable(rows: Row[], mib: number, rssBeforeMb: number): void {
  const stat = (key: keyof Row) => {
    const values = rows.map((r) => r[key]).sort((x, y) => x - y);
    return { best: values[0] as number, median: values[Math.floor(values.length / 2)] as number };
  };
  const [curl, sum, ours] = [stat("curl"), stat("sum"), stat("ours")];
  const [curlCpu, sumCpu, oursCpu] = [stat("curlCpu"), stat("sumCpu"), stat("oursCpu")];
  const [undici, undiciCpu] = [stat("undici"), stat("undiciCpu")];
  const rssMb = process.resourceUsage().maxRSS / 1024;
  const s = (n: number) => `${n.toFixed(3)} s`;
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  const line = (cells: string[]) => console.log(`| ${cells.join(" | ")} |`);
  const walls = rows.map((r) => [r.curl, r.sum, r.ours, r.undici].map((n) => +n.toFixed(3)));
  console.log(`\n${mib} MiB over loopback, ${rows.length} rounds, load average ${loadavg()[0]?.toFixed(2)}`);
  console.log(`rounds [curl, sha256sum, ours, ours through undici] wall: ${JSON.stringify(walls)}\n`);
  line(["measure", "wall best", "wall median", "CPU (user+sys) median"]);
  line(["---", "---", "---", "---"]);
  line(["curl -s -o", s(curl.best), s(curl.median), s(curlCpu.median)]);
  line(["sha256sum of curl's file", s(sum.best), s(sum.median), s(sumCpu.median)]);
  line([
    "curl + sha256sum",
    s(curl.best + sum.best),
    s(curl.median + sum.median),
    s(curlCpu.median + sumCpu.median),
  ]);
  line(["downloadFile (hash + fsync + install)", s(ours.best), s(ours.median), s(oursCpu.median)]);
  line([
    "downloadFile through undici (directHttp: false)",
    s(undici.best),
    s(undici.median),
    s(undiciCpu.median),
  ]);
  line([
    "ours / through undici",
    ratio(ours.best, undici.best),
    ratio(ours.median, undici.median),
    ratio(oursCpu.median, undiciCpu.median),
  ]);
  line([
    "ours / curl (target ≤ 1.1)",
    ratio(ours.best, curl.best),
    ratio(ours.median, curl.median),
    ratio(oursCpu.median, curlCpu.median),
  ]);
  line([
    "ours / (curl + sha256sum) (target ≤ 0.6)",
    ratio(ours.best, curl.best + sum.best),
    ratio(ours.median, curl.median + sum.median),
    ratio(oursCpu.median, curlCpu.median + sumCpu.median),
  ]);
  line([
    "peak RSS of this process (target < 200 MB)",
    `${rssMb.toFixed(0)} MB`,
    `${rssBeforeMb.toFixed(0)} MB before the first download`,
    "",
  ]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: "string", default: "512" },
      rounds: { type: "string", default: "5" },
      serve: { type: "string" },
    },
  });
  if (values.serve !== undefined) return serve(values.serve);
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  const sizeBytes = mib * MiB;

  const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-"));
  let server: ChildProcess | null = null;
  try {
    const source = join(dir, "source.bin");
    const sha = await makeFile(source, mib);
    server = fork(import.meta.filename, ["--serve", source], { stdio: "inherit" });
    const [message] = (await once(server, "message")) as [{ origin: string }];
    const url = `${message.origin}/file`;
    const agent = createDownloadAgent();
    const rssBeforeMb = process.memoryUsage().rss / MiB;

    const curlRound = async (round: number) => {
      const out = join(dir, `curl-${round}.bin`);
      await run("sync", []);
      const [curl, fetched] = await timed(() => runCpu("curl", ["-s", "-o", out, url], out));
      const [sum, summed] = await timed(() => runCpu("sha256sum", [out], out));
      if (!summed.stdout.startsWith(sha)) throw new Error("curl's copy does not match");
      await rm(out);
      return { curl, sum, curlCpu: fetched.cpu, sumCpu: summed.cpu };
    };
    const oursRound = async (round: number, directHttp = true) => {
      const storeRoot = join(dir, `store-${round}-${directHttp}`);
      await mkdir(storeRoot);
      const store = await ContentStore.open(storeRoot);
      await run("sync", []);
      const cpuBefore = process.cpuUsage();
      const [ours, result] = await timed(() =>
        downloadFile({ store, url, sha256: sha, size: sizeBytes, dispatcher: agent, directHttp }),
      );
      const cpu = process.cpuUsage(cpuBefore);
      if (result.bytesFetched !== sizeBytes || !(await store.has(sha)))
        throw new Error("download incomplete");
      await rm(storeRoot, { recursive: true });
      return { ours, oursCpu: (cpu.user + cpu.system) / 1e6 };
    };
    const bothRound = async (round: number) => {
      const first = round % 2 === 0;
      const a = await oursRound(round, first);
      const b = await oursRound(round, !first);
      const [direct, viaUndici] = first ? [a, b] : [b, a];
      return { ...direct, undici: viaUndici.ours, undiciCpu: viaUndici.oursCpu };
    };

    const rows: Row[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first: page cache and writeback state favour whoever runs on a quiet disk.
      if (round % 2 === 0) {
        const theirs = await curlRound(round);
        rows.push({ ...theirs, ...(await bothRound(round)) });
      } else {
        const ours = await bothRound(round);
        rows.push({ ...(await curlRound(round)), ...ours });
      }
    }
    await agent.close();
    printTable(rows, mib, rssBeforeMb);
  } finally {
    server?.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
