import { createHash } from "node:crypto";
import type { Manifest, ManifestImage } from "@bootstream/protocol";
import type { ImageFileRow, ImageRow } from "../db/entities";

/** Simplestreams version directories: 20250615, 20231004.0, 20240604_01. */
const VERSION_DIR = /^\d{8}([._]\d+)?$/;

/**
 * A file's name in the rack's published tree: the upstream path below its version directory
 * (`ga-24.04/generic/boot-kernel`), so an image's kernels keep apart as they do upstream. A
 * product lagging behind the image's version has its own version directory, so this is cut at the
 * path's version segment, not the image's version.
 */
export function manifestName(path: string): string {
  const segments = path.split("/").filter(Boolean);
  const at = segments.findIndex((segment) => VERSION_DIR.test(segment));
  const name = at >= 0 && at < segments.length - 1 ? segments.slice(at + 1) : segments;
  return name.join("/") || "file";
}

/** Names unique within an image (racks refuse a manifest that lists a name twice): clashes keep the whole path. */
function uniqueNames<T extends { path: string }>(files: readonly T[]): (T & { name: string })[] {
  const counts = new Map<string, number>();
  for (const file of files)
    counts.set(manifestName(file.path), (counts.get(manifestName(file.path)) ?? 0) + 1);
  return files.map((file) => {
    const short = manifestName(file.path);
    return {
      ...file,
      name: counts.get(short) === 1 ? short : file.path.split("/").filter(Boolean).join("/"),
    };
  });
}

/**
 * The images racks must hold: every synced image at its held version, except those that need a
 * file in `withheld` (found corrupt: the region cannot serve it, so no rack may be sent to pull it).
 */
export function buildManifestImages(
  images: readonly ImageRow[],
  files: readonly ImageFileRow[],
  withheld: ReadonlySet<string> = new Set(),
): ManifestImage[] {
  const byImage = new Map<string, ImageFileRow[]>();
  for (const file of files) {
    const key = `${file.imageId}\n${file.version}`;
    const list = byImage.get(key) ?? [];
    list.push(file);
    byImage.set(key, list);
  }
  return images
    .filter((image) => image.state === "synced" && image.version !== null)
    .map((image) => ({
      id: image.id,
      version: image.version!,
      files: uniqueNames(byImage.get(`${image.id}\n${image.version}`) ?? [])
        .map((f) => ({ sha256: f.sha256, size: f.size, ftype: f.ftype, name: f.name }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    }))
    .filter((image) => !image.files.some((file) => withheld.has(file.sha256)))
    .sort((a, b) => a.id.localeCompare(b.id));
}

export function manifestDigest(images: readonly ManifestImage[]): string {
  return createHash("sha256").update(JSON.stringify(images)).digest("hex");
}

export function manifestFiles(manifest: Manifest): Set<string> {
  return new Set(manifest.images.flatMap((image) => image.files.map((f) => f.sha256)));
}
