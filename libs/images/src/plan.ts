import { imageId, type ImageStatus, type SelectionItem } from "./model";
import type { SourceFile, SourceImage } from "./streams/types";

/** What the planner needs of a source's file and image (see streams/types.ts for the whole). */
export type PlannedFile = Pick<SourceFile, "sha256" | "size" | "path" | "ftype">;
export type OfferedImage = Pick<SourceImage, "os" | "release" | "arch" | "title" | "version"> & {
  files: readonly PlannedFile[];
};

export type HeldImage = { version: string | null; state: ImageStatus };

export type ImagePlan = {
  id: string;
  os: string;
  release: string;
  arch: string;
  title: string;
  /** The newest upstream version: what the image will hold when this plan is done. */
  version: string;
  /** Every path of `version`, once per path: two paths may name one sha256 (ga and hwe kernels). */
  files: PlannedFile[];
  /** Contents of `version` the store does not hold yet, once per sha256 (each is downloaded once). */
  missing: PlannedFile[];
  /** Bytes the image's distinct contents take (a sha256 two paths share counts once). */
  bytesTotal: number;
  bytesStored: number;
};

export type Plan = {
  images: ImagePlan[];
  /** Selected, but the source does not offer it (any more). */
  unavailable: { id: string; os: string; release: string; arch: string }[];
  /** Held images no longer selected. */
  remove: string[];
  /** Every missing file once, with the images that wait for it. */
  fetch: { file: PlannedFile; images: string[] }[];
};

export type PlanInput = {
  selection: readonly SelectionItem[];
  offered: readonly OfferedImage[];
  held: ReadonlyMap<string, HeldImage>;
  stored: ReadonlySet<string>;
};

/** The images a selection names, one per arch, in a stable order. */
export function selectedImageIds(selection: readonly SelectionItem[]): string[] {
  const ids = new Set<string>();
  for (const item of selection) for (const arch of item.arches) ids.add(imageId(item.os, item.release, arch));
  return [...ids].sort();
}

/** One entry per distinct `key`, the first one listed. */
function firstBy(files: readonly PlannedFile[], key: (file: PlannedFile) => string): PlannedFile[] {
  const seen = new Map<string, PlannedFile>();
  for (const file of files) if (!seen.has(key(file))) seen.set(key(file), file);
  return [...seen.values()];
}

/**
 * selection × what the source offers × what the store holds → what to download and what to drop.
 * Pure: the importer runs it at the start of every import, and again when it re-plans.
 */
export function planImport({ selection, offered, held, stored }: PlanInput): Plan {
  const offeredById = new Map(offered.map((image) => [imageId(image.os, image.release, image.arch), image]));
  const wanted = selectedImageIds(selection);
  const images: ImagePlan[] = [];
  const unavailable: Plan["unavailable"] = [];
  const waiting = new Map<string, { file: PlannedFile; images: string[] }>();

  for (const id of wanted) {
    const image = offeredById.get(id);
    if (!image) {
      const [os, release, arch] = id.split("/") as [string, string, string];
      unavailable.push({ id, os, release, arch });
      continue;
    }
    // Every path reaches the image (and the racks' trees); every content is downloaded and stored once.
    const files = firstBy(image.files, (file) => file.path);
    const contents = firstBy(files, (file) => file.sha256);
    const missing = contents.filter((file) => !stored.has(file.sha256));
    for (const file of missing) {
      const entry = waiting.get(file.sha256) ?? { file, images: [] };
      entry.images.push(id);
      waiting.set(file.sha256, entry);
    }
    const bytesTotal = contents.reduce((sum, file) => sum + file.size, 0);
    images.push({
      id,
      os: image.os,
      release: image.release,
      arch: image.arch,
      title: image.title,
      version: image.version,
      files,
      missing,
      bytesTotal,
      bytesStored: bytesTotal - missing.reduce((sum, file) => sum + file.size, 0),
    });
  }

  const keep = new Set(wanted);
  const remove = [...held.keys()].filter((id) => !keep.has(id)).sort();
  // Big files first: the longest transfers start early, so the import ends sooner.
  const fetch = [...waiting.values()].sort(
    (a, b) => b.file.size - a.file.size || a.file.sha256.localeCompare(b.file.sha256),
  );
  return { images, unavailable, remove, fetch };
}

/** Store files that nothing needs: neither a held version, nor one being imported, nor a pinned one. */
export function unreferencedFiles(stored: Iterable<string>, needed: ReadonlySet<string>): string[] {
  return [...stored].filter((sha) => !needed.has(sha)).sort();
}
