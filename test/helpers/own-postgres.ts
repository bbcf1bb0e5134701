import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Availability } from "./services";
import { freePort } from "./redis-server";

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of the test's own (initdb in a temp dir, its own port), so a test can restart
 * PostgreSQL mid-import without cutting off anyone else's tests on the machine's server. As root
 * (CI), it runs as the `postgres` user, which PostgreSQL requires.
 */
export type OwnPostgres = {
  url: string;
  /** `pg_ctl restart -m fast`, after `downMs` stopped: every connection is cut, it is back when this resolves. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
};

function binDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = path.join(root, version, "bin");
    if (existsSync(path.join(dir, "initdb"))) return dir;
  }
  return null;
}

export function ownPostgresAvailable(): Availability {
  return binDir() ? { ok: true } : { ok: false, reason: "no PostgreSQL server binaries (initdb) installed" };
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = binDir();
  if (!bin) throw new Error("no PostgreSQL server binaries");
  const dir = await mkdtemp(path.join(tmpdir(), "bootstream-pg-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pg = (tool: string, args: string[]) =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", path.join(bin, tool), ...args], { cwd: dir })
      : run(path.join(bin, tool), args, { cwd: dir });
  const data = path.join(dir, "data");
  await pg("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  const ctl = (action: string, extra: string[] = []) =>
    pg("pg_ctl", ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", ...extra, action]);
  await ctl("start");
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: async (downMs = 0) => {
      if (downMs <= 0) return void (await ctl("restart", ["-m", "fast"]));
      await ctl("stop", ["-m", "fast"]);
      try {
        await new Promise((resolve) => setTimeout(resolve, downMs));
      } finally {
        await ctl("start");
      }
    },
    stop: async () => {
      await ctl("stop", ["-m", "immediate"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
