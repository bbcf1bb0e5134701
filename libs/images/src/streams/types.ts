import type { Catalogue } from "../model";

/** One payload an image needs, as the source lists it. `path` is relative to the source URL. */
export type SourceFile = {
  sha256: string;
  size: number;
  path: string;
  ftype: string;
  /** The simplestreams product and version it was taken from (the first, when products share it). */
  product: string;
  version: string;
};

/** One selectable `os/release/arch`: the newest version of every product that makes it up. */
export type SourceImage = {
  /** `os/release/arch`, as imageId() makes it. */
  id: string;
  os: string;
  release: string;
  arch: string;
  /** "24.04 LTS" for Ubuntu, "CentOS 7" style for other systems. */
  title: string;
  /** The newest version name among the image's products. */
  version: string;
  /** The release's version number ("24.04", "7.0"), for ordering releases; null when not given. */
  releaseVersion: string | null;
  /** `support_eol` (YYYY-MM-DD) when given. */
  eol: string | null;
  /** Kernel flavours included (`ga-24.04`, `hwe-24.04`…), sorted. */
  subarches: string[];
  /** One per path, sorted by path; two paths may share a sha256 (it is downloaded once). */
  files: SourceFile[];
};

/** A bootloader product: read and kept aside, never selectable. */
export type SourceBootloader = {
  product: string;
  os: string;
  arch: string;
  bootloaderType: string;
  version: string;
  files: SourceFile[];
};

export type SourceContents = {
  /** The normalised source root every `path` is relative to. */
  url: string;
  signed: boolean;
  catalogue: Catalogue;
  images: SourceImage[];
  bootloaders: SourceBootloader[];
  /** Inconsistencies that did not stop the read (index vs product files, skipped products). */
  warnings: string[];
};
