import { CENTOS_ALIASES, CENTOS_BASES, KERNELS, UBUNTU_RELEASES } from "./releases";
import type { Kernel } from "./releases";

export type PayloadSizes = { kernel: number; initrd: number; squashfs: number; root: number };

export type MirrorOptions = {
  /** Ubuntu codenames (see UBUNTU_RELEASES). */
  releases?: readonly string[];
  arches?: readonly string[];
  /** `ga` for every release; `hwe` adds a second kernel to LTS releases, sharing their squashfs. */
  kernels?: readonly string[];
  /** How many versions each product has (dated two weeks apart, oldest first). */
  versions?: number;
  /** CentOS releases ("centos70", "8"); CentOS bases are amd64 only, as upstream. */
  centos?: readonly string[];
  /** Size of every payload not set in `sizes`. */
  payloadSize?: number;
  sizes?: Partial<PayloadSizes>;
  /** Armored, unprotected OpenPGP private key: also write clearsigned `.sjson` documents. */
  signingKey?: string;
};

/** Everything that decides what the mirror holds; saved next to it so a version can be added later. */
export type MirrorLayout = {
  releases: string[];
  arches: string[];
  kernels: Kernel[];
  versions: number;
  centos: string[];
  sizes: PayloadSizes;
};

/** A bad option: the CLI reports it as a usage error (exit 2). */
export class MirrorOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MirrorOptionsError";
  }
}

export const DEFAULT_PAYLOAD_SIZE = 64 * 1024;
const MAX_PAYLOAD_SIZE = 64 * 1024 ** 3;
const MAX_VERSIONS = 100;

export const DEFAULT_LAYOUT: MirrorLayout = {
  releases: ["jammy", "noble", "oracular"],
  arches: ["amd64", "arm64"],
  kernels: ["ga", "hwe"],
  versions: 2,
  centos: ["centos70", "8"],
  sizes: {
    kernel: DEFAULT_PAYLOAD_SIZE,
    initrd: DEFAULT_PAYLOAD_SIZE,
    squashfs: DEFAULT_PAYLOAD_SIZE,
    root: DEFAULT_PAYLOAD_SIZE,
  },
};

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function checkSize(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_PAYLOAD_SIZE) {
    throw new MirrorOptionsError(`${name} must be a whole number of bytes from 0 to 64 GiB, not ${value}`);
  }
  return value;
}

export function resolveLayout(options: MirrorOptions): MirrorLayout {
  const releases = unique(options.releases ?? DEFAULT_LAYOUT.releases);
  const unknown = releases.filter((release) => !Object.hasOwn(UBUNTU_RELEASES, release));
  if (unknown.length > 0) {
    throw new MirrorOptionsError(
      `unknown Ubuntu release ${unknown.join(", ")} (known: ${Object.keys(UBUNTU_RELEASES).join(", ")})`,
    );
  }
  const arches = unique(options.arches ?? DEFAULT_LAYOUT.arches);
  if (arches.length === 0 || arches.some((arch) => !/^[a-z0-9]{1,16}$/.test(arch))) {
    throw new MirrorOptionsError(`arches must be plain names like amd64, not "${arches.join(",")}"`);
  }
  const kernels = unique(options.kernels ?? DEFAULT_LAYOUT.kernels);
  if (
    kernels.length === 0 ||
    !kernels.every((k): k is Kernel => (KERNELS as readonly string[]).includes(k))
  ) {
    throw new MirrorOptionsError(`kernels must be ga, hwe or both, not "${kernels.join(",")}"`);
  }
  const versions = options.versions ?? DEFAULT_LAYOUT.versions;
  if (!Number.isInteger(versions) || versions < 1 || versions > MAX_VERSIONS) {
    throw new MirrorOptionsError(
      `versions must be a whole number from 1 to ${MAX_VERSIONS}, not ${versions}`,
    );
  }
  const centos = unique(
    (options.centos ?? DEFAULT_LAYOUT.centos).map((name) => CENTOS_ALIASES[name] ?? name),
  );
  const unknownCentos = centos.filter((name) => !Object.hasOwn(CENTOS_BASES, name));
  if (unknownCentos.length > 0) {
    throw new MirrorOptionsError(
      `unknown CentOS release ${unknownCentos.join(", ")} (known: ${Object.keys(CENTOS_BASES).join(", ")})`,
    );
  }
  const base = checkSize("payload size", options.payloadSize ?? DEFAULT_PAYLOAD_SIZE);
  const sizes: PayloadSizes = {
    kernel: checkSize("kernel size", options.sizes?.kernel ?? base),
    initrd: checkSize("initrd size", options.sizes?.initrd ?? base),
    squashfs: checkSize("squashfs size", options.sizes?.squashfs ?? base),
    root: checkSize("root size", options.sizes?.root ?? base),
  };
  const centosPublished = centos.some((name) =>
    CENTOS_BASES[name]?.arches.some((arch) => arches.includes(arch)),
  );
  if (releases.length === 0 && !centosPublished) {
    throw new MirrorOptionsError("nothing to publish: choose at least one release the arches allow");
  }
  return { releases, arches, kernels: kernels as Kernel[], versions, centos, sizes };
}
