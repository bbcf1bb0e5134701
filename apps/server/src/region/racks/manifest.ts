import { createHash } from "node:crypto";
import type { Manifest, ManifestImage } from "@bootstream/protocol";
import type { ImageFileRow, ImageRow } from "../db/entities";

/**
 * A file's name in the rack's published tree: the upstream path below the version directory
 * (`ga-24.04/generic/boot-kernel`), so an image's kernels keep apart as they do upstream.
 */
export function manifestName(path: string, version: string): string {
  const marker = `/${version}/`;
  const at = path.indexOf(marker);
  const name = at >= 0 ? path.slice(at + marker.length) : path.split("/").at(-1)!;
  return name.replace(/^\/+/, "") || "file";
}

/** The images racks must hold: every synced image at its held version. */
export function buildManifestImages(
  images: readonly ImageRow[],
  files: readonly ImageFileRow[],
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
      files: (byImage.get(`${image.id}\n${image.version}`) ?? [])
        .map((f) => ({
          sha256: f.sha256,
          size: f.size,
          ftype: f.ftype,
          name: manifestName(f.path, image.version!),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

export function manifestDigest(images: readonly ManifestImage[]): string {
  return createHash("sha256").update(JSON.stringify(images)).digest("hex");
}

export function manifestFiles(manifest: Manifest): Set<string> {
  return new Set(manifest.images.flatMap((image) => image.files.map((f) => f.sha256)));
}
