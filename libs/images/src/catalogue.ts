import type { Catalogue, OtherImage, UbuntuRelease } from "./model";
import type { SourceImage } from "./streams/types";
import { compareVersionNames } from "./streams/version-order";

/** What the catalogue needs of an image: readSource's SourceImage fits, so does a stored row. */
export type CatalogueImage = Pick<
  SourceImage,
  "os" | "release" | "arch" | "title" | "releaseVersion" | "eol"
>;

type Release = { first: CatalogueImage; arches: Set<string>; eols: string[] };

function newestFirst(a: Release, b: Release): number {
  const x = a.first.releaseVersion;
  const y = b.first.releaseVersion;
  if (x !== y) {
    if (x === null) return 1;
    if (y === null) return -1;
    const order = compareVersionNames(y, x);
    if (order !== 0) return order;
  }
  return a.first.release < b.first.release ? -1 : a.first.release > b.first.release ? 1 : 0;
}

function groupReleases(images: readonly CatalogueImage[]): Release[] {
  const releases = new Map<string, Release>();
  for (const image of images) {
    const key = `${image.os}/${image.release}`;
    let release = releases.get(key);
    if (release === undefined) {
      release = { first: image, arches: new Set(), eols: [] };
      releases.set(key, release);
    }
    release.arches.add(image.arch);
    if (image.eol !== null) release.eols.push(image.eol);
  }
  return [...releases.values()];
}

/**
 * What an admin can select: Ubuntu releases (newest first) with every arch any of them offers,
 * and the other systems one row per release. `eol` is the earliest end of support among arches.
 */
export function buildCatalogue(images: readonly CatalogueImage[]): Catalogue {
  const releases = groupReleases(images).sort(newestFirst);
  const ubuntu = releases.filter((r) => r.first.os === "ubuntu");
  const other = releases.filter((r) => r.first.os !== "ubuntu");
  return {
    ubuntu: {
      releases: ubuntu.map((r): UbuntuRelease => ({
        release: r.first.release,
        title: r.first.title,
        lts: /\bLTS\b/.test(r.first.title),
        eol: r.eols.sort()[0] ?? null,
      })),
      arches: [...new Set(ubuntu.flatMap((r) => [...r.arches]))].sort(),
    },
    other: other
      .sort((a, b) => (a.first.os < b.first.os ? -1 : a.first.os > b.first.os ? 1 : 0))
      .map((r): OtherImage => ({
        os: r.first.os,
        release: r.first.release,
        title: r.first.title,
        arches: [...r.arches].sort(),
      })),
  };
}
