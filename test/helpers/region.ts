import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Secrets of the test regions: the region refuses configured secrets under 32 characters. */
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789";
export const TEST_RACK_SECRET = "test-rack-secret-0123456789abcdef0123456789";

export const BIN = fileURLToPath(new URL("../../apps/server/bin/bootstream.js", import.meta.url));
/**
 * The `bootstream` command as npm installs it: node_modules/.bin's link to apps/server/bin/bootstream,
 * a shell launcher that execs node on BIN with its settings.
 */
export const LAUNCHER = fileURLToPath(new URL("../../node_modules/.bin/bootstream", import.meta.url));

export type RegionProcess = {
  url: string;
  adminToken: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the region printed, stdout and stderr. */
  output(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
};

export type RegionOptions = {
  env?: Record<string, string>;
  /** Reuse a data dir (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  adminToken?: string;
  /** Another entry script (the benches run a bundle) and node flags such as `--cpu-prof`. */
  script?: string;
  nodeArgs?: string[];
  /**
   * Run the shipped `bootstream` command (LAUNCHER) as an operator would, with `nodeArgs` in
   * NODE_OPTIONS, instead of node on `script` (the benches measure memory as shipped).
   */
  launcher?: boolean;
  /**
   * Called when the region exits after listening without stop() or kill() having been asked for (a
   * crash, an unhandled rejection). By default the error is thrown uncaught, which fails the run
   * with the region's exit code and last output instead of letting the test time out.
   */
  onUnexpectedExit?: (error: Error) => void;
  /** How long to wait for "region listening" before the child is killed (20 s). */
  startTimeoutMs?: number;
  /** Called with everything the region prints, as it comes (also before it listens). */
  onOutput?: (chunk: string) => void;
};

/** Starts a real `bootstream region` process on an ephemeral port and waits until it listens. */
export async function startRegion(options: RegionOptions = {}): Promise<RegionProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "bootstream-region-")));
  const adminToken = options.adminToken ?? TEST_ADMIN_TOKEN;
  const nodeOptions = [process.env["NODE_OPTIONS"] ?? "", ...(options.nodeArgs ?? [])].join(" ").trim();
  const [command, args] = options.launcher
    ? [LAUNCHER, ["region"]]
    : [process.execPath, [...(options.nodeArgs ?? []), options.script ?? BIN, "region"]];
  const child = spawn(command, args, {
    env: {
      ...process.env,
      ...(options.launcher && nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      ADMIN_TOKEN: adminToken,
      RACK_SECRET: TEST_RACK_SECRET,
      BOOT_SOURCE_URL: "http://127.0.0.1:9/unreachable/",
      // No unrequested hourly import in the middle of a test (tests of the schedule set their own).
      IMPORT_SCHEDULE: "59 59 23 31 12 *",
      LOG_LEVEL: "info",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  if (options.onOutput) {
    child.stdout!.on("data", options.onOutput);
    child.stderr!.on("data", options.onOutput);
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let expectingExit = false;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;

  const url = await new Promise<string>((resolve, reject) => {
    // A region that does not listen in time is killed (no leaked process) and its output reported
    // once it has gone, so the error carries the last of what it printed.
    const timer = setTimeout(() => {
      expectingExit = true;
      child.kill("SIGKILL");
      void exited.then((code) =>
        reject(
          new Error(
            `region did not listen within ${startTimeoutMs} ms (pid ${child.pid} killed, exit ${code}):\n${output}`,
          ),
        ),
      );
    }, startTimeoutMs);
    const onData = () => {
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)".*"msg":"region listening"/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      if (!expectingExit) reject(new Error(`region exited with ${code} before listening:\n${output}`));
    });
  });
  // "close": after the exit and the last of its output.
  child.once("close", (code, signal) => {
    if (expectingExit) return;
    const error = new Error(
      `region ${url} exited unexpectedly (code ${code}, signal ${signal}):\n${output.slice(-4000)}`,
    );
    if (options.onUnexpectedExit) options.onUnexpectedExit(error);
    else
      process.nextTick(() => {
        throw error;
      });
  });

  return {
    url,
    adminToken,
    dataDir,
    child,
    output: () => output,
    stop: async () => {
      expectingExit = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      expectingExit = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
