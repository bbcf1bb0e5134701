import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { BIN, TEST_RACK_SECRET } from "./region";

export type RackProcess = {
  name: string;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** JSON log lines the agent printed. */
  logs(): { msg: string; [key: string]: unknown }[];
  /** Resolves when a log line with this `msg` has appeared (`after` lines already seen are skipped). */
  waitForLog(
    msg: string,
    timeoutMs?: number,
    after?: number,
  ): Promise<{ msg: string; [key: string]: unknown }>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
};

export type RackOptions = {
  regionUrl: string;
  name: string;
  /** The site-wide rack secret (the test region's by default); ignored when `token` is given. */
  secret?: string;
  /** A rack token (RACK_TOKEN) instead of the secret. */
  token?: string;
  dataDir?: string;
  env?: Record<string, string>;
  /** Another entry script than the compiled bin, and node flags before it (benches). */
  script?: string;
  nodeArgs?: string[];
};

/** Starts a real `bootstream rack` process. */
export async function startRack(options: RackOptions): Promise<RackProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), `bootstream-${options.name}-`)));
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      options.script ?? BIN,
      "rack",
      "--region",
      options.regionUrl,
      "--name",
      options.name,
      "--data-dir",
      dataDir,
    ],
    {
      // The credential goes in the environment, as the docs say: a command line is readable in /proc.
      env: {
        ...process.env,
        RACK_TOKEN: options.token ?? "",
        RACK_SECRET: options.token ? "" : (options.secret ?? TEST_RACK_SECRET),
        RACK_SYNC_SCHEDULE: "*/2 * * * * *",
        LOG_LEVEL: "info",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const logs = () =>
    output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .flatMap((line) => {
        // The last line may still be half-written.
        try {
          return [JSON.parse(line) as { msg: string }];
        } catch {
          return [];
        }
      });
  return {
    name: options.name,
    dataDir,
    child,
    output: () => output,
    logs,
    waitForLog: (msg, timeoutMs = 20_000, after = 0) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = () => {
          const hit = logs()
            .slice(after)
            .find((line) => line.msg === msg);
          if (hit) return resolve(hit);
          if (Date.now() - started > timeoutMs)
            return reject(new Error(`rack ${options.name} never logged "${msg}":\n${output.slice(-3000)}`));
          setTimeout(poll, 50);
        };
        poll();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
