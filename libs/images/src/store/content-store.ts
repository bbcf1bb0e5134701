import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { hashFile } from "./hash-file";
import { assertSha256, isSha256 } from "./sha";

/** What the downloader remembers about the bytes of a `.partial`, so a resume can ask for the same version. */
export type PartialMeta = {
  url: string;
  /** Strong ETag of the response the bytes came from, if the server sent one. */
  etag: string | null;
  lastModified: string | null;
};

/** What re-hashing a stored file found; "missing": it was deleted meanwhile (garbage collection). */
export type FileCheck = "ok" | "corrupt" | "missing";

const PARTIAL_SUFFIX = ".partial";
const META_SUFFIX = ".partial.json";
const TMP_SUFFIX = ".tmp";
const PREFIX_DIR = /^[0-9a-f]{2}$/;

/**
 * A content-addressed file store:
 *   root/store/<sha[0:2]>/<sha>   verified files, named by the sha256 of their bytes
 *   root/partial/<sha>.partial    bytes of an unfinished download (+ <sha>.partial.json sidecar)
 *   root/quarantine/<sha>         files found corrupt by a verification: out of service, kept as evidence
 * A file appears under store/ only by rename after it was hashed and fsynced, so a reader never sees
 * half a file and a crash never leaves a wrong one. The directory listing is the index.
 */
export type ContentStoreOptions = {
  /**
   * Files only this user may read (0600) and directories only they may enter (0700): the region's
   * store. A rack's store stays world-readable (0644), since its published tree is served by TFTP
   * and HTTP daemons running as other users.
   */
  private?: boolean;
};

export class ContentStore {
  readonly root: string;
  /** Mode of every file this store creates (`.partial`, sidecar; kept by the rename into the store). */
  readonly fileMode: number;
  private readonly dirMode: number;
  private readonly storeDir: string;
  private readonly partialDir: string;
  private readonly quarantineDir: string;
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(root: string, options: ContentStoreOptions) {
    this.root = root;
    this.fileMode = options.private ? 0o600 : 0o644;
    this.dirMode = options.private ? 0o700 : 0o755;
    this.storeDir = join(root, "store");
    this.partialDir = join(root, "partial");
    this.quarantineDir = join(root, "quarantine");
  }

  static async open(root: string, options: ContentStoreOptions = {}): Promise<ContentStore> {
    const store = new ContentStore(root, options);
    await fsp.mkdir(store.storeDir, { recursive: true, mode: store.dirMode });
    await fsp.mkdir(store.partialDir, { recursive: true, mode: store.dirMode });
    await store.removeStrays();
    return store;
  }

  pathOf(sha: string): string {
    assertSha256(sha);
    return join(this.storeDir, sha.slice(0, 2), sha);
  }

  async has(sha: string): Promise<boolean> {
    return (await this.size(sha)) !== null;
  }

  /** Size in bytes of a stored file, or null when it is not in the store. */
  async size(sha: string): Promise<number | null> {
    try {
      const stat = await fsp.stat(this.pathOf(sha));
      return stat.isFile() ? stat.size : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Every verified sha in the store, sorted. Read from disk each time: the disk is the truth. */
  async list(): Promise<string[]> {
    const shas: string[] = [];
    for (const prefix of await readDirNames(this.storeDir)) {
      if (!PREFIX_DIR.test(prefix)) continue;
      for (const name of await readDirNames(join(this.storeDir, prefix))) {
        if (isSha256(name) && name.startsWith(prefix)) shas.push(name);
      }
    }
    return shas.sort();
  }

  /** Deletes a stored file; false when it was not there. */
  async remove(sha: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathOf(sha));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Bytes available to this (unprivileged) process on the store's filesystem. */
  async freeBytes(): Promise<number> {
    const stats = await fsp.statfs(this.root);
    return stats.bavail * stats.bsize;
  }

  /** Re-hashes a stored file: true when its bytes still match its name, false when corrupt or missing. */
  async verifyFile(sha: string, signal?: AbortSignal): Promise<boolean> {
    const path = this.pathOf(sha);
    const hash = createHash("sha256");
    try {
      await hashFile(path, hash, signal);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    return hash.digest("hex") === sha;
  }

  /**
   * Re-hashes a stored file, streaming (1 MiB reads, so memory stays bounded and the event loop
   * turns between reads); `onBytes` is told each read's length.
   */
  async checkFile(sha: string, signal?: AbortSignal, onBytes?: (bytes: number) => void): Promise<FileCheck> {
    const hash = createHash("sha256");
    try {
      await hashFile(this.pathOf(sha), hash, signal, onBytes);
    } catch (err) {
      if (isNotFound(err)) return "missing";
      throw err;
    }
    return hash.digest("hex") === sha ? "ok" : "corrupt";
  }

  // ---- quarantine: files a verification found corrupt ----------------------------------------

  /**
   * Takes a stored file out of service at once: renamed into root/quarantine/, so `has`, `list` and
   * every reader of the store stop seeing it (and a download may install good bytes in its place).
   * False when it was not in the store.
   */
  async quarantine(sha: string): Promise<boolean> {
    const from = this.pathOf(sha);
    await fsp.mkdir(this.quarantineDir, { recursive: true, mode: this.dirMode });
    try {
      await fsp.rename(from, join(this.quarantineDir, sha));
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await syncDir(this.quarantineDir);
    await syncDir(join(this.storeDir, sha.slice(0, 2)));
    return true;
  }

  /** Shas held in quarantine, sorted: the disk remembers what was found corrupt across restarts. */
  async listQuarantined(): Promise<string[]> {
    return (await readDirNames(this.quarantineDir)).filter(isSha256).sort();
  }

  /** Deletes a quarantined file (it was repaired, or nothing needs it any more). */
  async discardQuarantined(sha: string): Promise<void> {
    assertSha256(sha);
    await fsp.rm(join(this.quarantineDir, sha), { force: true });
  }

  // ---- partial files: used by the downloader -------------------------------------------------

  partialPath(sha: string): string {
    assertSha256(sha);
    return join(this.partialDir, sha + PARTIAL_SUFFIX);
  }

  /** Shas that have a `.partial` (unfinished downloads), sorted. */
  async listPartials(): Promise<string[]> {
    const shas: string[] = [];
    for (const name of await readDirNames(this.partialDir)) {
      const sha = name.slice(0, -PARTIAL_SUFFIX.length);
      if (name.endsWith(PARTIAL_SUFFIX) && isSha256(sha)) shas.push(sha);
    }
    return shas.sort();
  }

  /** Length of the `.partial` of sha, 0 when there is none. */
  async partialBytes(sha: string): Promise<number> {
    try {
      return (await fsp.stat(this.partialPath(sha))).size;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  async readPartialMeta(sha: string): Promise<PartialMeta | null> {
    let text: string;
    try {
      text = await fsp.readFile(this.metaPath(sha), "utf8");
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    try {
      return parsePartialMeta(JSON.parse(text));
    } catch {
      // A torn or foreign sidecar only costs us the validator: resume without If-Range, the sha check still guards.
      return null;
    }
  }

  /** Written via rename so a crash leaves the old sidecar or the new one, never half of one. */
  async writePartialMeta(sha: string, meta: PartialMeta): Promise<void> {
    const path = this.metaPath(sha);
    const tmp = path + TMP_SUFFIX;
    await fsp.writeFile(tmp, JSON.stringify(meta), { mode: this.fileMode });
    await fsp.rename(tmp, path);
  }

  async discardPartial(sha: string): Promise<void> {
    await fsp.rm(this.partialPath(sha), { force: true });
    await fsp.rm(this.metaPath(sha), { force: true });
  }

  /**
   * Moves a finished `.partial` into the store. `digest` is the sha256 the caller computed over the bytes;
   * it is checked again here so no code path can install a file under a name that is not its hash.
   * Order: fsync the file → rename into place → fsync the directory (the rename itself must survive a crash).
   */
  async installPartial(sha: string, digest: string): Promise<void> {
    const from = this.partialPath(sha);
    if (digest !== sha) {
      throw new Error(`refusing to install ${from}: its sha256 is ${digest}, not ${sha}`);
    }
    const file = await fsp.open(from, "r");
    try {
      await file.sync();
    } finally {
      await file.close();
    }
    const dir = join(this.storeDir, sha.slice(0, 2));
    const created = await fsp.mkdir(dir, { recursive: true, mode: this.dirMode });
    await fsp.rename(from, this.pathOf(sha));
    await syncDir(dir);
    if (created !== undefined) await syncDir(this.storeDir);
    await fsp.rm(this.metaPath(sha), { force: true });
  }

  /**
   * Runs fn with sha locked in this process: two imports wanting the same file must not write the same
   * `.partial` at once. The second one waits, then usually finds the file stored.
   */
  async withLock<T>(sha: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    assertSha256(sha);
    const previous = this.locks.get(sha) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.locks.set(sha, tail);
    try {
      // Giving up the wait early is safe: later waiters wait on `tail`, which still includes `previous`.
      await (signal ? abortable(previous, signal) : previous);
      return await fn();
    } finally {
      release();
      if (this.locks.get(sha) === tail) this.locks.delete(sha);
    }
  }

  private metaPath(sha: string): string {
    assertSha256(sha);
    return join(this.partialDir, sha + META_SUFFIX);
  }

  /**
   * Startup cleanup of what only a crash leaves behind: sidecar temp files, sidecars without their
   * partial, and partials of files that made it into the store (crash between rename and cleanup).
   * Unknown files are left alone: the store never lists them, and they may be someone's evidence.
   */
  private async removeStrays(): Promise<void> {
    const names = new Set(await readDirNames(this.partialDir));
    for (const name of names) {
      const path = join(this.partialDir, name);
      if (name.endsWith(TMP_SUFFIX)) {
        await fsp.rm(path, { force: true });
      } else if (name.endsWith(META_SUFFIX)) {
        const sha = name.slice(0, -META_SUFFIX.length);
        if (!names.has(sha + PARTIAL_SUFFIX)) await fsp.rm(path, { force: true });
      } else if (name.endsWith(PARTIAL_SUFFIX)) {
        const sha = name.slice(0, -PARTIAL_SUFFIX.length);
        if (isSha256(sha) && (await this.has(sha))) await this.discardPartial(sha);
      }
    }
    for (const prefix of await readDirNames(this.storeDir)) {
      if (!PREFIX_DIR.test(prefix)) continue;
      for (const name of await readDirNames(join(this.storeDir, prefix))) {
        if (name.endsWith(TMP_SUFFIX)) await fsp.rm(join(this.storeDir, prefix, name), { force: true });
      }
    }
  }
}

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, reject);
  });
}

function parsePartialMeta(value: unknown): PartialMeta | null {
  if (typeof value !== "object" || value === null) return null;
  const { url, etag, lastModified } = value as Record<string, unknown>;
  const optionalString = (v: unknown): v is string | null => v === null || typeof v === "string";
  if (typeof url !== "string" || !optionalString(etag) || !optionalString(lastModified)) return null;
  return { url, etag, lastModified };
}

async function readDirNames(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}
