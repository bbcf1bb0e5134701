import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, loadRegionConfig, parseInteger } from "../config";
import { createLogger } from "../log";
import { createMirror, LAYOUT_FILE } from "../mirror/create-mirror";
import { serveDirectory } from "../mirror/serve";
import { startRegion } from "../region/region";
import { generateSecret } from "../region/services/tokens";
import { UsageError } from "../cli/usage";
import { ThrottleProxy } from "./throttle-proxy";
import { BIN } from "../paths";
import { formatBytes } from "@bootstream/images/present";

const MiB = 1024 * 1024;

/** Big enough that "Downloading 42%" is there to see, small enough to write in seconds. */
const DEMO_MIRROR = {
  releases: ["jammy", "noble"],
  arches: ["amd64", "arm64"],
  centos: ["centos70"],
  versions: 2,
  sizes: { kernel: 2 * MiB, initrd: 6 * MiB, squashfs: 40 * MiB, root: 24 * MiB },
};

/**
 * `bootstream demo`: everything a new user needs to see an import, offline — a generated mirror
 * served on loopback (throttled so progress is visible), a region pointed at it, two rack agents.
 */
export async function runDemo(argv: string[]): Promise<number> {
  let flags: Record<string, string | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        "data-dir": { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        rate: { type: "string" },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const root = path.resolve(flags["data-dir"] ?? path.join(process.env.DATA_DIR ?? "./data", "demo"));
  let rate: number;
  try {
    rate = parseInteger("--rate", flags.rate ?? "24", 1, 100_000) * MiB;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await mkdir(root, { recursive: true });
  const say = (line: string) => process.stdout.write(`${line}\n`);

  const mirrorDir = path.join(root, "mirror");
  if (!existsSync(path.join(mirrorDir, LAYOUT_FILE))) {
    say(`Writing a local simplestreams mirror to ${mirrorDir} (once) …`);
    const summary = await createMirror(mirrorDir, DEMO_MIRROR);
    say(`  ${summary.images.length} images, ${summary.files} files, ${formatBytes(summary.bytes)}`);
  }
  const served = await serveDirectory(mirrorDir);
  const proxy = await ThrottleProxy.start(served.url, rate);

  const rackSecret = generateSecret();
  let config;
  try {
    config = loadRegionConfig(
      flags.port || flags.host
        ? [...(flags.port ? ["--port", flags.port] : []), ...(flags.host ? ["--host", flags.host] : [])]
        : [],
      {
        ...process.env,
        DATA_DIR: path.join(root, "region"),
        BOOT_SOURCE_URL: proxy.url,
        BOOT_SOURCE_KEYRING: "none",
        RACK_SECRET: rackSecret,
        // The region's own first-start admin token stays unprinted: the demo hands out its "demo" token.
        ADMIN_TOKEN: generateSecret(),
        DATABASE_URL: "",
        REDIS_URL: "",
      },
    );
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  const logFile = path.join(root, "region.log");
  const region = await startRegion(config, createLogger(config.logLevel, "region", logFile)).catch(
    (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(
        code === "EADDRINUSE" ? `port ${config.port} is in use; pass --port N` : (error as Error).message,
      );
    },
  );
  const { context } = region;
  // The mirror's port changes every run: point the stored source at this run's. An import the
  // last run left unfinished resumed at start against the old port (and fails there): import again
  // from this one, so what it had not finished comes now, not at the next hourly tick.
  const moved = context.source.state().url !== proxy.url;
  if (moved)
    await context.source.update(proxy.url, null, null, {
      by: "demo",
      action: "source:update",
      detail: `${proxy.url} (this run's local mirror)`,
    });
  // The same token every run on this data dir: a wall screen's #token= URL stays valid.
  const tokenFile = path.join(root, "demo-token");
  let token = existsSync(tokenFile) ? (await readFile(tokenFile, "utf8")).trim() : "";
  const known = token ? await context.tokens.authenticate(token) : null;
  if (known?.name !== "demo" || known.role !== "admin") {
    token = await context.tokens.issue("admin", "demo");
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  }
  const kept = context.images
    .states()
    .filter((image) => image.version !== null && (image.state === "synced" || image.state === "rack-synced"));
  if (!(await context.selection.initialised())) context.importer.request("selection");
  else if (moved) context.importer.request("manual");

  // Each rack gets a token of its own (the stronger choice than the site-wide secret), in its environment.
  const rackTokens = new Map<string, string>();
  for (const name of ["rack-1", "rack-2"]) rackTokens.set(name, await context.tokens.issue("rack", name));
  const racks: ChildProcess[] = [...rackTokens].map(([name, rackToken]) => {
    const out = createWriteStream(path.join(root, `${name}.log`), { flags: "a" });
    const child = spawn(
      process.execPath,
      [BIN, "rack", "--region", region.url, "--name", name, "--data-dir", path.join(root, name)],
      {
        // stdin is a pipe from us: it closes when the demo dies, however it dies, and the rack stops.
        stdio: ["pipe", "pipe", "pipe"],
        env: {
          ...process.env,
          RACK_TOKEN: rackToken,
          RACK_SECRET: "",
          RACK_SYNC_SCHEDULE: "*/5 * * * *",
          BOOTSTREAM_EXIT_WITH_PARENT: "stdin",
        },
      },
    );
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    return child;
  });

  say("");
  say("Bootstream demo is running.");
  say("");
  say(`  Dashboard:  ${region.url}/#token=${token}`);
  say(`  CLI:        BOOTSTREAM_URL=${region.url} BOOTSTREAM_TOKEN=${token} npx bootstream status --watch`);
  say(`  Mirror:     ${served.url} (served at ${rate / MiB} MiB/s through ${proxy.url})`);
  say(`  Logs:       ${root}/{region,rack-1,rack-2}.log`);
  say("");
  if (kept.length > 0) {
    const names = kept.map((image) => `${image.id} ${image.version}`);
    say(
      `Kept ${kept.length === 1 ? "1 image" : `${kept.length} images`} from the last run: ${names.join(", ")}.`,
    );
    say("Served at once; the racks sync what they miss. Ctrl-C stops.");
  } else {
    say("The default image (newest Ubuntu LTS, amd64) imports now, then both racks sync it. Ctrl-C stops.");
  }

  return new Promise<number>((resolve) => {
    const stop = async () => {
      say("\nStopping …");
      for (const rack of racks) rack.kill("SIGTERM");
      await Promise.all(
        racks.map(
          (rack) => new Promise((done) => (rack.exitCode !== null ? done(null) : rack.once("exit", done))),
        ),
      );
      await region.close();
      await proxy.close();
      await served.close();
      resolve(0);
    };
    process.once("SIGINT", () => void stop());
    process.once("SIGTERM", () => void stop());
  });
}
