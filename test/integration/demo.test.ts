import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMirror } from "../../apps/server/src/mirror/create-mirror";
import { BIN, removeDir } from "../helpers/region";
import { waitFor, watch } from "../helpers/watch";

// `bootstream demo` as a service: its rack children go when it dies, kill -9 included, and a re-run
// on the same data dir keeps its admin token (a wall screen's URL stays valid) and says what it kept.
// The mirror is made small beforehand (the demo makes its own only when none is there).

type Demo = { child: ChildProcess; out: () => string; url: string; token: string; exited: Promise<unknown> };

async function startDemo(root: string): Promise<Demo> {
  const child = spawn(process.execPath, [BIN, "demo", "--data-dir", root, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /Dashboard: +(http:\/\/[^/]+)\/#token=(\S+)/.exec(out);
      if (m && /Ctrl-C stops/.test(out)) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on("data", check);
    void exited.then(() => reject(new Error(`the demo exited:\n${out}`)));
  });
  return { child, out: () => out, url: match[1]!, token: match[2]!, exited };
}

/** Pids whose parent is `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === pid) found.push(Number(entry));
  }
  return found;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Resolves once none of `pids` runs (checked as the processes end; bounded). */
async function gone(pids: number[], timeoutMs = 20_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = left.filter(alive);
  }
  return left;
}

describe("bootstream demo", () => {
  let root = "";
  const demos: Demo[] = [];
  const rackPids: number[] = [];
  afterAll(async () => {
    // A failing run must not leave racks behind either.
    for (const pid of rackPids.filter(alive)) process.kill(pid, "SIGKILL");
    for (const demo of demos)
      if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill("SIGKILL");
    if (root) await removeDir(root);
  });

  it("its racks die with it on kill -9; a re-run keeps the token, says which images it kept, and stops on SIGTERM", async () => {
    root = await mkdtemp(path.join(tmpdir(), "bootstream-demo-"));
    await createMirror(path.join(root, "mirror"), {
      releases: ["noble"],
      arches: ["amd64"],
      centos: [],
      versions: 1,
      payloadSize: 64 * 1024,
    });
    const first = await startDemo(root);
    demos.push(first);
    const client = await watch(first.url, first.token);
    let version: string;
    try {
      const state = await waitFor(
        client,
        (s) =>
          s.images.get("ubuntu/noble/amd64")?.state === "rack-synced" &&
          s.racks.filter((r) => r.online).length === 2,
        60_000,
        "the demo's first import on both racks",
      );
      version = state.images.get("ubuntu/noble/amd64")!.version!;
    } finally {
      client.close();
    }
    const racks = await childrenOf(first.child.pid!);
    rackPids.push(...racks);
    expect(racks).toHaveLength(2);

    first.child.kill("SIGKILL");
    await first.exited;
    expect(await gone(racks)).toEqual([]);

    const second = await startDemo(root);
    demos.push(second);
    expect(second.token).toBe(first.token);
    expect(second.out()).toContain(`Kept 1 image from the last run: ubuntu/noble/amd64 ${version}.`);
    const racksAgain = await childrenOf(second.child.pid!);
    rackPids.push(...racksAgain);
    expect(racksAgain).toHaveLength(2);
    // Stopped once its racks run (their own SIGTERM handling and stdin watch in place), the demo
    // and its racks end: a rack that kept reading stdin once stopped held the demo up for ever.
    const again = await watch(second.url, second.token);
    try {
      await waitFor(again, (s) => s.racks.filter((r) => r.online).length === 2, 60_000, "racks back");
    } finally {
      again.close();
    }
    second.child.kill("SIGTERM");
    expect(await gone([second.child.pid!, ...racksAgain], 30_000)).toEqual([]);
    expect(second.child.exitCode).toBe(0);
  });
});
