// What MAAS keeps of a product version. Manifests, signatures and anything newer stay upstream.
const IMAGE_FILE_TYPES = new Set([
  "boot-kernel",
  "boot-initrd",
  "boot-dtb",
  "squashfs",
  "root-tgz",
  "root-tbz",
  "root-txz",
]);
const ROOT_IMAGE = "root-image.gz";

export function isImageFileType(ftype: string): boolean {
  return IMAGE_FILE_TYPES.has(ftype) || ftype.startsWith("root-dd") || ftype === ROOT_IMAGE;
}

/**
 * The items of one product version an image needs. `root-image.gz` is the pre-squashfs root
 * image: where a squashfs is published it is redundant, and large, so it is left out.
 */
export function imageItems<T extends { ftype: string | undefined }>(items: readonly T[]): T[] {
  const kept = items.filter((item) => item.ftype !== undefined && isImageFileType(item.ftype));
  if (!kept.some((item) => item.ftype === "squashfs")) return kept;
  return kept.filter((item) => item.ftype !== ROOT_IMAGE);
}

/** Bootloader products ship archives under their own ftypes: everything but manifests. */
export function bootloaderItems<T extends { ftype: string | undefined }>(items: readonly T[]): T[] {
  return items.filter((item) => item.ftype !== undefined && item.ftype !== "manifest");
}
