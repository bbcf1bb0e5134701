import { imageId } from "../model";
import { isSha256 } from "../store/sha";
import { bootloaderItems, imageItems } from "./file-types";
import type { StreamItem, StreamProduct } from "./products";
import { SourceError } from "./source-error";
import { unsafePathReason } from "./source-url";
import type { SourceBootloader, SourceFile, SourceImage } from "./types";
import { newestVersionName } from "./version-order";

// os, release and arch become the image id `os/release/arch` and selection names: keep them plain.
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function toSourceFile(product: StreamProduct, item: StreamItem): SourceFile {
  const where = `${product.file}: ${product.id} version ${product.version} item ${item.name}`;
  const sha256 = item.sha256?.toLowerCase();
  if (!isSha256(sha256)) throw new SourceError(`${where}: sha256 missing or not 64 hex digits`);
  if (item.size === undefined || !/^\d{1,16}$/.test(item.size) || !Number.isSafeInteger(Number(item.size))) {
    throw new SourceError(`${where}: size missing or not a byte count`);
  }
  if (item.path === undefined) throw new SourceError(`${where}: path missing`);
  const unsafe = unsafePathReason(item.path);
  if (unsafe !== null) {
    throw new SourceError(`${where}: path ${JSON.stringify(item.path)} escapes the source (it ${unsafe})`);
  }
  return {
    sha256,
    size: Number(item.size),
    path: item.path,
    ftype: item.ftype ?? "",
    product: product.id,
    version: product.version,
  };
}

/**
 * One file per path: two paths with one sha256 are both kept (at release time noble's hwe-24.04
 * kernel is byte-identical to ga-24.04's, and a rack needs both paths). One sha256 with two sizes
 * is a contradiction that stops the read; one path with two contents keeps the first, with a warning.
 */
function addFile(
  files: Map<string, SourceFile>,
  sizes: Map<string, SourceFile>,
  file: SourceFile,
  where: string,
  warnings: string[],
): void {
  const sameSha = sizes.get(file.sha256);
  if (sameSha === undefined) sizes.set(file.sha256, file);
  else if (sameSha.size !== file.size) {
    throw new SourceError(
      `${where}: sha256 ${file.sha256} is listed with sizes ${sameSha.size} (${sameSha.path}) and ${file.size} (${file.path})`,
    );
  }
  const samePath = files.get(file.path);
  if (samePath === undefined) files.set(file.path, file);
  else if (samePath.sha256 !== file.sha256) {
    warnings.push(
      `${where}: path ${file.path} is listed with sha256 ${samePath.sha256} (${samePath.product}) and ${file.sha256} (${file.product}); kept the first`,
    );
  }
}

function byPath(a: SourceFile, b: SourceFile): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function titleOf(product: StreamProduct, os: string, release: string): string {
  if (product.releaseTitle !== undefined && product.releaseTitle.trim() !== "")
    return product.releaseTitle.trim();
  if (os === "ubuntu" && product.releaseVersion !== undefined) return product.releaseVersion;
  return `${os} ${release}`;
}

export type CollectedImages = { images: SourceImage[]; bootloaders: SourceBootloader[]; warnings: string[] };

type ImageGroup = { os: string; release: string; arch: string; members: StreamProduct[] };

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function toImage(id: string, group: ImageGroup, warnings: string[]): SourceImage | null {
  const { os, release, arch, members } = group;
  const first = members[0] as StreamProduct;
  const files = new Map<string, SourceFile>();
  const sizes = new Map<string, SourceFile>();
  for (const product of members) {
    const items = imageItems(product.items);
    if (items.length === 0) {
      warnings.push(`${product.file}: ${product.id} ${product.version} has no image files`);
    }
    for (const item of items) addFile(files, sizes, toSourceFile(product, item), product.file, warnings);
  }
  if (files.size === 0) return null;
  const eols = members.flatMap((p) =>
    p.supportEol !== undefined && ISO_DATE.test(p.supportEol) ? [p.supportEol] : [],
  );
  return {
    id,
    os,
    release,
    arch,
    title: titleOf(first, os, release),
    version: newestVersionName(members.map((p) => p.version)) ?? first.version,
    releaseVersion: first.releaseVersion ?? null,
    // The kernels of one image may give different dates; the earliest is the safe one to show.
    eol: eols.sort()[0] ?? null,
    subarches: [...new Set(members.flatMap((p) => (p.subarch === undefined ? [] : [p.subarch])))].sort(),
    files: [...files.values()].sort(byPath),
  };
}

/** Groups products into selectable images (one per os/release/arch) and bootloaders. */
export function collectImages(products: readonly StreamProduct[]): CollectedImages {
  const warnings: string[] = [];
  const bootloaders: SourceBootloader[] = [];
  const groups = new Map<string, ImageGroup>();
  // Sorted so "the first product" (title, a shared file's product) is the same on every read.
  for (const product of [...products].sort(byId)) {
    const { os, release, arch } = product;
    if (product.bootloaderType !== undefined) {
      bootloaders.push({
        product: product.id,
        os: os ?? "",
        arch: arch ?? "",
        bootloaderType: product.bootloaderType,
        version: product.version,
        files: bootloaderItems(product.items).map((item) => toSourceFile(product, item)),
      });
      continue;
    }
    if (os === undefined || release === undefined || arch === undefined) {
      warnings.push(`${product.file}: skipped ${product.id}: it names no os, release and arch`);
      continue;
    }
    if (![os, release, arch].every((name) => NAME.test(name))) {
      warnings.push(
        `${product.file}: skipped ${product.id}: os/release/arch "${os}/${release}/${arch}" is not plain`,
      );
      continue;
    }
    const id = imageId(os, release, arch);
    const group = groups.get(id);
    if (group === undefined) groups.set(id, { os, release, arch, members: [product] });
    else group.members.push(product);
  }

  const images: SourceImage[] = [];
  for (const [id, group] of groups) {
    const image = toImage(id, group, warnings);
    if (image !== null) images.push(image);
  }
  return { images: images.sort(byId), bootloaders, warnings };
}
