// The rack's view of a manifest. The schema itself (names, layout, one size per sha256) is the
// protocol's: the region checks what it sends with it, and the rack what it receives.
import type { Manifest } from "@bootstream/protocol";

export { manifestSchema, parseManifest, publishedPath } from "@bootstream/protocol";

/** Every file the manifest names, once per sha256, with its size. */
export function wantedFiles(manifest: Manifest): Map<string, number> {
  const files = new Map<string, number>();
  for (const image of manifest.images) for (const file of image.files) files.set(file.sha256, file.size);
  return files;
}

/** Same content and generation: publishing it again would change nothing a reader can see. */
export function sameManifest(a: Manifest, b: Manifest): boolean {
  return a.generation === b.generation && JSON.stringify(a.images) === JSON.stringify(b.images);
}
