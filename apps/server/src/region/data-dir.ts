import { chmod, mkdir, open, stat, writeFile } from "node:fs/promises";
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
