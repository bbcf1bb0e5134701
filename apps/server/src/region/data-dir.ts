import { readFileSync } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  open,
  readFile,
  rmdir,
  stat,
  unlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import type { Logger } from "../log";

/** The SQLite database in a data dir (with its `-wal` and `-shm` beside it). */
export const SQLITE_FILE = "bootstream.db";
/** Where first-start secrets go when no terminal is there to show them (mode 0600). */
export const SECRETS_FILE = "generated-secrets.txt";

/**
 * Makes DATA_DIR private before anything is written in it: the directory 0700, the SQLite files
 * 0600 (SQLite gives its `-wal` and `-shm` the mode of the database file, so the file is made
 * first). A data dir or database left wider by an older version is tightened, with a warning.
 */
export async function prepareDataDir(dataDir: string, sqlite: boolean, log: Logger): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await tighten(dataDir, 0o700, log);
  for (const dir of ["store", "partial"]) await tighten(path.join(dataDir, dir), 0o700, log);
  if (!sqlite) return;
  const db = path.join(dataDir, SQLITE_FILE);
  await (await open(db, "a", 0o600)).close();
  for (const file of [db, `${db}-wal`, `${db}-shm`]) await tighten(file, 0o600, log);
}

/** Takes group and other bits off `target` when it has any beyond `mode`; a missing path is fine. */
async function tighten(target: string, mode: number, log: Logger): Promise<void> {
  let current: number;
  try {
    current = (await stat(target)).mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if ((current & ~mode) === 0) return;
  await chmod(target, mode);
  log.warn(
    { path: target, was: current.toString(8), now: mode.toString(8) },
    "permissions were wider than the region allows: tightened",
  );
}

/**
 * Shows generated secrets once: on the terminal (stderr) when there is one, or else in a 0600 file
 * in the data dir; never on stdout, where the JSON log lines go and may be shipped elsewhere.
 */
export async function revealSecrets(dataDir: string, lines: string[], log: Logger): Promise<void> {
  const text = `\n${lines.join("\n")}\n\n`;
  if (process.stderr.isTTY) {
    process.stderr.write(text);
    return;
  }
  const file = path.join(dataDir, SECRETS_FILE);
  await writeFile(file, text.trimStart(), { mode: 0o600, flag: "a" });
  await chmod(file, 0o600);
  log.warn(
    { file },
    "generated secrets were written to this file (mode 0600): keep them somewhere safe, then delete it",
  );
}

/** What a start took back of what it had created, and what it had to leave (not empty). */
export type TakenBack = { removed: string[]; kept: string[] };

/**
 * Notes which of the paths a start creates in DATA_DIR are not there yet — the data dir itself (and
 * any missing parents), `store/`, `partial/` and, on SQLite, the database files — so that a start
 * that fails before it listens can take back what it created and nothing else. Directories go only
 * when empty (`rmdir`): whatever else got into them stays, and is reported as kept. A database file
 * goes only when this start created it: it holds the schema and the secrets this start took back.
 */
export async function noteNewPaths(
  dataDir: string,
  sqlite: boolean,
): Promise<{ undo(): Promise<TakenBack> }> {
  const missing = async (target: string) =>
    lstat(target).then(
      () => false,
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return true;
        throw error;
      },
    );
  // Deepest first: the order they are removed in.
  const dirs: string[] = [];
  for (const dir of ["store", "partial"].map((d) => path.join(dataDir, d)))
    if (await missing(dir)) dirs.push(dir);
  for (
    let dir = path.resolve(dataDir);
    (await missing(dir)) && path.dirname(dir) !== dir;
    dir = path.dirname(dir)
  )
    dirs.push(dir);
  const db = path.join(dataDir, SQLITE_FILE);
  const files: string[] = [];
  if (sqlite) for (const file of [db, `${db}-wal`, `${db}-shm`]) if (await missing(file)) files.push(file);
  return {
    undo: async () => {
      const removed: string[] = [];
      const kept: string[] = [];
      for (const file of files) {
        try {
          await unlink(file);
          removed.push(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") kept.push(file);
        }
      }
      for (const dir of dirs) {
        try {
          await rmdir(dir);
          removed.push(dir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") kept.push(dir);
        }
      }
      return { removed, kept };
    },
  };
}

/** Who holds a data dir: written by the region that uses it, removed when it stops. */
export const LOCK_FILE = "region.lock";
/** The holder touches its lock this often; one untouched for LOCK_STALE_MS is a dead region's. */
export const LOCK_REFRESH_MS = 10_000;
export const LOCK_STALE_MS = 30_000;
type LockHolder = { pid: number; host: string; startedAt: string };

/** Another region (a second unit, a hand-started one on another port) uses this data dir. */
export class DataDirInUse extends Error {}

/**
 * Takes DATA_DIR for this region: two regions on one data dir would import into one store, each
 * collecting the other's files as unused, and show each other's state as stale. The lock names the
 * holder and is touched every LOCK_REFRESH_MS while it runs. A holder on this host whose process is
 * gone (a crash, kill -9) is taken over at once; one on another host (a recreated container has a
 * new host name) once its lock has gone LOCK_STALE_MS untouched, so a supervisor's restart gets in.
 * Resolves with the release, which removes the lock only while it is still this region's.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, LOCK_FILE);
  const mine: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, text, { flag: "wx", mode: 0o600 });
      const refresh = setInterval(() => {
        const now = new Date();
        utimes(file, now, now).catch(() => undefined);
      }, LOCK_REFRESH_MS);
      refresh.unref();
      return async () => {
        clearInterval(refresh);
        const now = await readFile(file, "utf8").catch(() => null);
        if (now === text) await unlink(file).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = await readHolder(file);
    const age = await stat(file).then(
      (info) => Date.now() - info.mtimeMs,
      () => Infinity,
    );
    if (holder !== null && holds(holder, age)) {
      throw new DataDirInUse(
        `${dataDir} is in use by another region (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}): stop it, or give this one its own --data-dir / DATA_DIR (if that region is gone, start again in ${Math.ceil(LOCK_STALE_MS / 1000)} s, or delete ${file})`,
      );
    }
    await unlink(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  throw new DataDirInUse(`${dataDir}: another region took ${file} at the same moment`);
}

async function readHolder(file: string): Promise<LockHolder | null> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.host !== "string") return null;
    return { pid: parsed.pid, host: parsed.host, startedAt: String(parsed.startedAt) };
  } catch {
    return null; // unreadable or half-written: not a holder anyone can name
  }
}

/** Whether the holder still runs; `ageMs` is how long ago it last touched its lock. */
function holds(holder: LockHolder, ageMs: number): boolean {
  // On another host nobody here can see its process: only its touches say it runs.
  if (holder.host !== hostname()) return ageMs < LOCK_STALE_MS;
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  // Alive, but after a reboot the pid may be some other program's: only a bootstream holds it.
  try {
    return readFileSync(`/proc/${holder.pid}/cmdline`, "utf8").includes("bootstream");
  } catch {
    return true; // no /proc: trust the pid
  }
}
