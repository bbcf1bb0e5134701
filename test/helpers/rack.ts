import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BootstreamClient } from "@bootstream/protocol/client";
import type { MirrorOptions } from "../../apps/server/src/mirror/options";
import { BIN, TEST_RACK_SECRET, removeDir, startRegion, type RegionProcess } from "./region";
import { startMirror, type TestMirror } from "./mirror";
import { waitFor, watch } from "./watch";
import { sha256File } from "./store";

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

/**
 * A region on a test mirror with its default selection (noble/amd64) imported, an admin client
 * watching it, and the racks a test starts on it. stop() ends all of it and removes every data dir.
 */
export type RackSite = {
  readonly mirror: TestMirror;
  readonly region: RegionProcess;
  readonly client: BootstreamClient;
  /** A rack on the site's region (or on `regionUrl`); stop() kills it and removes its data dir. */
  startRack(options: Omit<RackOptions, "regionUrl"> & { regionUrl?: string }): Promise<RackProcess>;
  /**
   * Closes the client, stops the region (resolving its exit code), starts it again on its data dir
   * with `env` on top of the site's, and watches it with a new client: read region and client anew.
   */
  restartRegion(env?: Record<string, string>): Promise<number | null>;
  stop(): Promise<void>;
};

export async function startRackSite(mirrorOptions: MirrorOptions): Promise<RackSite> {
  const racks: RackProcess[] = [];
  const mirror = await startMirror(mirrorOptions);
  const env = { BOOT_SOURCE_URL: mirror.url };
  let region: RegionProcess | undefined;
  let client: BootstreamClient | undefined;
  const stop = async () => {
    client?.close();
    for (const rack of racks) {
      await rack.kill();
      await removeDir(rack.dataDir);
    }
    await region?.stop();
    await mirror.close();
    if (region) await removeDir(region.dataDir);
  };
  try {
    region = await startRegion({ env });
    client = await watch(region.url, region.adminToken);
    await waitFor(
      client,
      (s) => s.images.get("ubuntu/noble/amd64")?.state === "synced",
      30_000,
      "noble imported",
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return {
    mirror,
    get region() {
      return region!;
    },
    get client() {
      return client!;
    },
    startRack: async (options) => {
      const rack = await startRack({ ...options, regionUrl: options.regionUrl ?? region!.url });
      racks.push(rack);
      return rack;
    },
    restartRegion: async (more = {}) => {
      client!.close();
      client = undefined;
      const code = await region!.stop();
      region = await startRegion({ dataDir: region!.dataDir, env: { ...env, ...more } });
      client = await watch(region.url, region.adminToken);
      return code;
    },
    stop,
  };
}

/** Every published file's bytes, hashed: what a machine booting from the rack would read. */
export async function publishedShas(rack: RackProcess): Promise<string[]> {
  const root = await realpath(path.join(rack.dataDir, "current"));
  const shas: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.name !== "manifest.json") shas.push(await sha256File(full));
    }
  };
  await walk(path.join(root, "images"));
  return shas.sort();
}
