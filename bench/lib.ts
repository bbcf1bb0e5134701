// Shared pieces of the benchmarks: /proc readings, a mirror of the shape, child processes, tables.
import { execFileSync, fork, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createMirror, type MirrorSummary } from "../apps/server/src/mirror/create-mirror";

export const MiB = 1024 * 1024;
/** Kernel clock ticks per second (USER_HZ); 100 on every Linux build we run on. */
const TICKS_PER_SECOND = 100;
const PRODUCT_FILE = "streams/v1/com.ubuntu.maas:stable:v3:download.json";

// ---------------------------------------------------------------- /proc

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // The command name may hold spaces and parentheses: fields are counted after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / TICKS_PER_SECOND;
}

/** CPU seconds of each thread of a process, by thread id (the main thread's id is the pid). */
export async function threadCpu(pid: number): Promise<Map<number, number>> {
  const threads = new Map<number, number>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => null);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    threads.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
  }
  return threads;
}

/** CPU seconds of a process's main thread (tid = pid) and of all its other threads (threadpool, GC, …). */
export async function threadCpuSeconds(pid: number): Promise<{ main: number; others: number }> {
  let main = 0;
  let others = 0;
  for (const [tid, cpu] of await threadCpu(pid)) {
    if (tid === pid) main += cpu;
    else others += cpu;
  }
  return { main, others };
}

/** The busiest threads between two threadCpu() readings, as "main 1.20, 0.45, 0.30 …" (seconds). */
export function busiestThreads(
  pid: number,
  before: Map<number, number>,
  after: Map<number, number>,
  top = 6,
): string {
  const deltas = [...after].map(([tid, cpu]) => ({ tid, cpu: cpu - (before.get(tid) ?? 0) }));
  const main = deltas.find((d) => d.tid === pid)?.cpu ?? 0;
  const others = deltas
    .filter((d) => d.tid !== pid && d.cpu > 0)
    .sort((a, b) => b.cpu - a.cpu)
    .slice(0, top)
    .map((d) => d.cpu.toFixed(2));
  return `main ${main.toFixed(2)}; others ${others.join(", ") || "none"}`;
}

/** CPU seconds of this process's children that have ended and been waited for (cutime + cstime). */
export async function childrenCpuSeconds(): Promise<number> {
  const stat = await readFile("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] as string;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .split(/\s+/)
    .slice(1, 9)
    .map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle! + iowait!) / TICKS_PER_SECOND };
}

/** CPU seconds used so far by each process outside this bench's own process tree (kernel threads left out). */
export async function foreignCpu(): Promise<Map<number, number>> {
  const procs: { pid: number; ppid: number; cpu: number }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => null);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    procs.push({
      pid: Number(entry),
      ppid: Number(fields[1]),
      cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
    });
  }
  const ours = new Set([process.pid]);
  // Parents have lower pids almost always, but not after pid wrap-around: iterate until stable.
  for (let changed = true; changed;) {
    changed = false;
    for (const p of procs) {
      if (!ours.has(p.pid) && ours.has(p.ppid)) {
        ours.add(p.pid);
        changed = true;
      }
    }
  }
  return new Map(
    procs.filter((p) => !ours.has(p.pid) && p.pid !== 2 && p.ppid !== 2).map((p) => [p.pid, p.cpu]),
  );
}

/**
 * CPU seconds other processes used between two foreignCpu() snapshots. A process that ended in between
 * is not counted (its time is gone from /proc): a lower bound.
 */
export function foreignDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, cpu] of after) sum += cpu - (before.get(pid) ?? 0);
  return sum;
}

/**
 * Waits (bounded) until the machine is quiet: other sessions share it, and a bench measured while a
 * test suite runs next to it measures the suite. Resolves with the busy share of the last 2 s seen.
 * BENCH_QUIET_WAIT_S bounds the wait (120 s by default; on a machine that is never quiet, e.g. 10).
 */
export async function waitForQuiet(
  maxWaitMs = Number(process.env["BENCH_QUIET_WAIT_S"] ?? 120) * 1000,
  busyBelow = 0.15,
): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  let warned = false;
  for (;;) {
    const m0 = await machineCpu();
    await sleep(2000);
    const m1 = await machineCpu();
    const busy = (m1.busy - m0.busy) / Math.max(0.01, m1.total - m0.total);
    if (busy < busyBelow) return busy;
    if (Date.now() > deadline) {
      console.log(
        `  (machine still ${(100 * busy).toFixed(0)}% busy after ${maxWaitMs / 1000} s; measuring anyway)`,
      );
      return busy;
    }
    if (!warned)
      console.log(`  (machine ${(100 * busy).toFixed(0)}% busy with other work; waiting for quiet)`);
    warned = true;
  }
}

/** True when other processes took more than `share` of the machine during a measured window. */
export function disturbed(foreignSeconds: number, seconds: number, share = 0.1): boolean {
  return foreignSeconds > share * seconds * availableParallelism();
}

export type CpuWindow<T> = {
  value: T;
  seconds: number;
  /** Share of all cores busy over the window, 0..1. */
  machineBusy: number;
  /** CPU seconds of the watched processes, by name. */
  cpu: Record<string, number>;
  /** CPU seconds of processes outside this bench's tree: other work disturbing the measure. */
  foreign: number;
};

/** Samples the machine's CPU, some processes' CPU and everyone else's around `fn`. */
export async function withCpu<T>(pids: Record<string, number>, fn: () => Promise<T>): Promise<CpuWindow<T>> {
  const foreign0 = await foreignCpu();
  const before = await Promise.all(Object.values(pids).map(cpuSeconds));
  const m0 = await machineCpu();
  const started = performance.now();
  const value = await fn();
  const seconds = (performance.now() - started) / 1000;
  const m1 = await machineCpu();
  const after = await Promise.all(Object.values(pids).map(cpuSeconds));
  const foreign = foreignDelta(foreign0, await foreignCpu());
  const cpu = Object.fromEntries(Object.keys(pids).map((name, i) => [name, after[i]! - before[i]!]));
  return { value, seconds, machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total), cpu, foreign };
}

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM). */
export async function statusMiB(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** Resets VmHWM to the current RSS (Linux clear_refs "5"), so a later VmHWM is the peak of what follows. */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, "5");
}

// ---------------------------------------------------------------- the mirror

export type BenchMirror = {
  summary: MirrorSummary;
  /** Image ids, e.g. ubuntu/noble/amd64. */
  images: string[];
  /** Every distinct payload the selection needs: path below the mirror root, sha256, size. */
  files: { path: string; sha256: string; size: number }[];
  bytes: number;
  sharedSquashfs: { path: string; by: string[] };
};

type Item = { ftype: string; path: string; sha256: string; size: number };
type ProductsDoc = {
  products: Record<
    string,
    { release: string; arch: string; versions: Record<string, { items: Record<string, Item> }> }
  >;
};

/**
 * The import: 4 images (jammy and noble × amd64 and arm64, ga kernels only) of kernel 16 MiB +
 * initrd 64 MiB + squashfs 256 MiB each, with one squashfs shared by two images.
 *
 * `bootstream mirror create` shares a squashfs only between the ga and hwe kernels of one release/arch,
 * and Bootstream folds those kernels into one image (`ubuntu/noble/amd64`), so it cannot make two
 * *images* share one. We write the mirror with it, then point noble/arm64's squashfs item at
 * noble/amd64's (same path, sha256 and size) in the unsigned product file: the planner deduplicates by
 * sha256, so that squashfs is downloaded once for two images, as in the issue.
 */
export async function makeBenchMirror(dir: string): Promise<BenchMirror> {
  const summary = await createMirror(dir, {
    releases: ["jammy", "noble"],
    arches: ["amd64", "arm64"],
    kernels: ["ga"],
    versions: 1,
    centos: [],
    sizes: { kernel: 16 * MiB, initrd: 64 * MiB, squashfs: 256 * MiB, root: 16 * MiB },
  });
  const file = join(dir, PRODUCT_FILE);
  const doc = JSON.parse(await readFile(file, "utf8")) as ProductsDoc;
  const find = (release: string, arch: string) => {
    const product = Object.values(doc.products).find((p) => p.release === release && p.arch === arch);
    const version = product && Object.values(product.versions)[0];
    if (!version) throw new Error(`mirror has no ${release}/${arch}`);
    return version.items;
  };
  const owner = find("noble", "amd64");
  const sharer = find("noble", "arm64");
  sharer["squashfs"] = { ...(sharer["squashfs"] as Item), ...pick(owner["squashfs"] as Item) };
  await writeFile(file, `${JSON.stringify(doc, null, 1)}\n`);

  const distinct = new Map<string, { path: string; sha256: string; size: number }>();
  for (const product of Object.values(doc.products)) {
    for (const version of Object.values(product.versions)) {
      for (const item of Object.values(version.items)) {
        if (item.ftype === "manifest") continue;
        distinct.set(item.sha256, pick(item));
      }
    }
  }
  const files = [...distinct.values()].sort((a, b) => b.size - a.size);
  return {
    summary,
    images: summary.images,
    files,
    bytes: files.reduce((n, f) => n + f.size, 0),
    sharedSquashfs: {
      path: (owner["squashfs"] as Item).path,
      by: ["ubuntu/noble/amd64", "ubuntu/noble/arm64"],
    },
  };
}

function pick(item: Item): { path: string; sha256: string; size: number } {
  return { path: item.path, sha256: item.sha256, size: item.size };
}

// ---------------------------------------------------------------- child processes

const children = new Set<ChildProcess>();
let exitHooked = false;

/**
 * Kills `child` if this bench exits before it does (an exception, Ctrl-C): regions, racks and servers
 * must not outlive a bench that failed half-way.
 */
export function killOnExit<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!exitHooked) {
    exitHooked = true;
    process.once("exit", () => {
      for (const each of children)
        if (each.exitCode === null && each.signalCode === null) each.kill("SIGKILL");
    });
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  }
  return child;
}

/**
 * Serves `dir` with the mirror's own static server (serveDirectory, Range and all) in a child process,
 * so its CPU is not the bench's and the bench's event loop does not slow it down.
 */
export async function serveInChild(
  dir: string,
): Promise<{ url: string; pid: number; close(): Promise<void> }> {
  const child = killOnExit(
    fork(new URL("./serve-dir.ts", import.meta.url), [dir], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  const [message] = (await once(child, "message")) as [{ url: string }];
  return {
    url: message.url,
    pid: child.pid!,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/** Runs a command to the end; rejects on a non-zero exit. Resolves with its stdout. */
export function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: env ?? process.env });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args[0] ?? ""}… exited with ${code}`)),
    );
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  await once(child, "exit");
}

// ---------------------------------------------------------------- the region's HTTP commands

/** POST /api/v1/commands/:name; throws with the region's error when it refuses. */
export async function command<T = Record<string, unknown>>(
  url: string,
  token: string,
  name: string,
  payload: unknown = {},
): Promise<T> {
  const response = await fetch(`${url}/api/v1/commands/${name}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  const body = (await response.json()) as { ok: boolean; error?: { message: string } } & T;
  if (!body.ok) throw new Error(`${name} refused: ${body.error?.message ?? response.status}`);
  return body;
}

// ---------------------------------------------------------------- numbers and tables

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The q-quantile (0..1) by nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [(performance.now() - start) / 1000, value];
}

/** A Markdown table, columns padded so it reads in a terminal too. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export const verdict = (ok: boolean) => (ok ? "met" : "MISSED");

/** node version, platform, cores, and the commit measured (with a mark when the work tree differs from it). */
export function machine(): string {
  let rev = "unknown commit";
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "apps", "libs"], {
      encoding: "utf8",
    }).trim();
    rev = `commit ${head}${dirty ? " + uncommitted changes in apps/ or libs/" : ""}`;
  } catch {
    // not a git checkout
  }
  return `node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores; ${rev}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
