import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Manifest } from "@bootstream/protocol";
import { parseManifest, publishedPath } from "./manifest";

/**
 * The rack's published set, what machines boot from:
 *
 *   DATA_DIR/current -> snapshots/<generation>-<random>        (a relative symlink)
 *   DATA_DIR/snapshots/<generation>-<random>/manifest.json
 *   DATA_DIR/snapshots/<generation>-<random>/images/<os>/<release>/<arch>/<version>/<name>
 *
 * A snapshot is built complete (hard links to the store, so no bytes are copied) before `current` is
 * switched to it with one rename. A reader that resolves `current/` therefore sees either the old set
 * or the new one, never a mix, and never a file that is still being written.
 */
export const CURRENT_LINK = "current";
export const SNAPSHOTS_DIR = "snapshots";
export const MANIFEST_FILE = "manifest.json";
const TMP_LINK_PREFIX = "current.tmp-";

export type PublishedSet = {
  /** The snapshot directory's name under snapshots/. */
  snapshot: string;
  /** null when the snapshot's manifest.json is missing or unreadable. */
  manifest: Manifest | null;
  publishedAt: string | null;
  /** sha256 of every file present in the snapshot, sorted and unique. */
  inventory: string[];
  /** Every file the manifest names is present with its size: nothing to repair. */
  complete: boolean;
};

/**
 * Builds a snapshot of `manifest` from the store and switches `current` to it. `storePath` gives the
 * stored file of a sha256; every one must exist (the caller downloaded them first), or this throws
 * and `current` is left as it was. Old snapshots are not removed here: see removeStaleSnapshots.
 */
export async function publishSnapshot(
  dataDir: string,
  manifest: Manifest,
  storePath: (sha256: string) => string,
  now: Date = new Date(),
): Promise<PublishedSet> {
  const snapshotsDir = join(dataDir, SNAPSHOTS_DIR);
  await fsp.mkdir(snapshotsDir, { recursive: true });
  const snapshot = `${manifest.generation}-${randomBytes(6).toString("hex")}`;
  const root = join(snapshotsDir, snapshot);
  await fsp.mkdir(root);

  const dirs = new Set<string>([root]);
  for (const image of manifest.images) {
    for (const file of image.files) {
      const target = join(root, publishedPath(image, file));
      const parent = dirname(target);
      if (!dirs.has(parent)) {
        await fsp.mkdir(parent, { recursive: true });
        for (let dir = parent; dir !== root && !dirs.has(dir); dir = dirname(dir)) dirs.add(dir);
      }
      await fsp.link(storePath(file.sha256), target);
    }
  }
  const publishedAt = now.toISOString();
  const manifestPath = join(root, MANIFEST_FILE);
  await fsp.writeFile(manifestPath, JSON.stringify({ ...manifest, publishedAt }, null, 2) + "\n");
  await syncFile(manifestPath);
  // Hard links and mkdirs are directory entries: they are durable only once their directories are
  // fsynced, and that must happen before `current` can point at them. Deepest first, then upwards.
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await syncDir(dir);
  await syncDir(snapshotsDir);

  await switchCurrent(dataDir, `${SNAPSHOTS_DIR}/${snapshot}`);
  const inventory = [...new Set(manifest.images.flatMap((i) => i.files.map((f) => f.sha256)))].sort();
  return { snapshot, manifest, publishedAt, inventory, complete: true };
}

/**
 * The published set as it is on disk, or null when nothing was ever published. Each file is checked
 * to exist with its manifest size, so a rack never reports a file a machine could not read.
 */
export async function readPublished(dataDir: string): Promise<PublishedSet | null> {
  let target: string;
  try {
    target = await fsp.readlink(join(dataDir, CURRENT_LINK));
  } catch (err) {
    if (errno(err) === "ENOENT") return null;
    throw err;
  }
  const snapshot = snapshotName(target);
  if (snapshot === null) {
    throw new Error(`${join(dataDir, CURRENT_LINK)} points at ${target}, not at ${SNAPSHOTS_DIR}/<name>`);
  }
  const root = join(dataDir, SNAPSHOTS_DIR, snapshot);
  const broken: PublishedSet = {
    snapshot,
    manifest: null,
    publishedAt: null,
    inventory: [],
    complete: false,
  };

  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(join(root, MANIFEST_FILE), "utf8"));
  } catch {
    return broken;
  }
  const parsed = parseManifest(json);
  if (!parsed.ok) return broken;
  const manifest = parsed.manifest;
  const at = (json as { publishedAt?: unknown }).publishedAt;
  const publishedAt = typeof at === "string" ? at : null;

  // A sha that backs one good path and one broken one is still missing somewhere: it does not count.
  const named = new Set<string>();
  const missing = new Set<string>();
  for (const image of manifest.images) {
    for (const file of image.files) {
      named.add(file.sha256);
      if ((await fileSize(join(root, publishedPath(image, file)))) !== file.size) missing.add(file.sha256);
    }
  }
  const inventory = [...named].filter((sha) => !missing.has(sha)).sort();
  return { snapshot, manifest, publishedAt, inventory, complete: missing.size === 0 };
}

/**
 * Deletes every snapshot but those in `keep` (the one `current` points at, and after a publish the
 * one it pointed at before, so a machine mid-way through a boot file finishes reading it), and the
 * temporary links a crash between symlink and rename leaves behind. Returns the snapshots removed.
 */
export async function removeStaleSnapshots(
  dataDir: string,
  ...keep: (string | null | undefined)[]
): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readDirNames(join(dataDir, SNAPSHOTS_DIR))) {
    if (keep.includes(name)) continue;
    await fsp.rm(join(dataDir, SNAPSHOTS_DIR, name), { recursive: true, force: true });
    removed.push(name);
  }
  for (const name of await readDirNames(dataDir)) {
    if (name.startsWith(TMP_LINK_PREFIX)) await fsp.rm(join(dataDir, name), { force: true });
  }
  return removed;
}

/** rename(2) over an existing symlink is atomic: there is no moment without a `current`. */
async function switchCurrent(dataDir: string, target: string): Promise<void> {
  const tmp = join(dataDir, TMP_LINK_PREFIX + randomBytes(6).toString("hex"));
  await fsp.symlink(target, tmp);
  try {
    await fsp.rename(tmp, join(dataDir, CURRENT_LINK));
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dataDir);
}

function snapshotName(target: string): string | null {
  const match = new RegExp(`^(?:\\./)?${SNAPSHOTS_DIR}/([^/]+)/?$`).exec(target);
  const name = match?.[1];
  return name === undefined || name === "." || name === ".." ? null : name;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    const stat = await fsp.stat(path);
    return stat.isFile() ? stat.size : null;
  } catch (err) {
    if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return null;
    throw err;
  }
}

async function readDirNames(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (errno(err) === "ENOENT") return [];
    throw err;
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await fsp.open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  await syncFile(dir);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}
