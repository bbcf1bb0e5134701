import type { MirrorLayout } from "./options";
import { CENTOS_BASES, UBUNTU_RELEASES } from "./releases";

export const LABEL = "stable";
const MANIFEST_SIZE = 1024;

export type PlannedItem = {
  name: string;
  ftype: string;
  path: string;
  size: number;
  /** Extra item fields upstream publishes (kpackage). */
  fields?: Record<string, string>;
};
export type PlannedProduct = {
  id: string;
  fields: Record<string, string>;
  versions: Map<string, PlannedItem[]>;
};
export type PlannedProductFile = { contentId: string; path: string; products: PlannedProduct[] };
export type MirrorPlan = { productFiles: PlannedProductFile[]; ubuntuVersions: string[]; updated: string };

// Version dates are fixed, not "today": the same options give byte-identical documents on every run.
const FIRST_VERSION = Date.UTC(2025, 5, 1);
const VERSION_STEP_MS = 14 * 24 * 3600 * 1000;

function versionDate(index: number): Date {
  return new Date(FIRST_VERSION + index * VERSION_STEP_MS);
}

function yyyymmdd(date: Date): string {
  return date.toISOString().slice(0, 10).replaceAll("-", "");
}

/** simplestreams' `updated` style: "Sun, 15 Jun 2025 00:00:00 +0000". */
function updatedStamp(date: Date): string {
  return date.toUTCString().replace("GMT", "+0000");
}

function ubuntuProducts(layout: MirrorLayout, versions: string[]): PlannedProduct[] {
  const products: PlannedProduct[] = [];
  for (const name of layout.releases) {
    const release = UBUNTU_RELEASES[name];
    if (release === undefined) continue;
    // Upstream publishes hwe kernels for LTS releases only.
    const kernels = layout.kernels.filter((kernel) => kernel === "ga" || release.lts);
    for (const arch of layout.arches) {
      for (const kernel of kernels) {
        const subarch = `${kernel}-${release.version}`;
        const kpackage = kernel === "ga" ? "linux-generic" : `linux-generic-hwe-${release.version}`;
        const byVersion = new Map<string, PlannedItem[]>();
        for (const version of versions) {
          const dir = `${name}/${arch}/${version}`;
          byVersion.set(version, [
            {
              name: "boot-initrd",
              ftype: "boot-initrd",
              path: `${dir}/${subarch}/generic/boot-initrd`,
              size: layout.sizes.initrd,
              fields: { kpackage },
            },
            {
              name: "boot-kernel",
              ftype: "boot-kernel",
              path: `${dir}/${subarch}/generic/boot-kernel`,
              size: layout.sizes.kernel,
              fields: { kpackage },
            },
            { name: "manifest", ftype: "manifest", path: `${dir}/squashfs.manifest`, size: MANIFEST_SIZE },
            // One path per version, whatever the kernel: ga and hwe list the same squashfs.
            { name: "squashfs", ftype: "squashfs", path: `${dir}/squashfs`, size: layout.sizes.squashfs },
          ]);
        }
        products.push({
          id: `com.ubuntu.maas.${LABEL}:v3:boot:${release.version}:${arch}:${subarch}`,
          fields: {
            arch,
            kflavor: "generic",
            krel: name,
            label: LABEL,
            os: "ubuntu",
            release: name,
            release_codename: release.codename,
            release_title: release.lts ? `${release.version} LTS` : release.version,
            subarch,
            subarches: `generic,${subarch}`,
            support_eol: release.eol,
            ...(release.esmEol === undefined ? {} : { support_esm_eol: release.esmEol }),
            version: release.version,
          },
          versions: byVersion,
        });
      }
    }
  }
  return products;
}

function centosProducts(layout: MirrorLayout, versions: string[]): PlannedProduct[] {
  const products: PlannedProduct[] = [];
  for (const name of layout.centos) {
    const base = CENTOS_BASES[name];
    if (base === undefined) continue;
    for (const arch of base.arches.filter((a) => layout.arches.includes(a))) {
      const byVersion = new Map<string, PlannedItem[]>();
      for (const version of versions) {
        const dir = `centos/${name}/${arch}/${version}`;
        byVersion.set(version, [
          { name: "manifest", ftype: "manifest", path: `${dir}/root-tgz.manifest`, size: MANIFEST_SIZE },
          { name: "root-tgz", ftype: "root-tgz", path: `${dir}/root-tgz`, size: layout.sizes.root },
        ]);
      }
      products.push({
        id: `com.ubuntu.maas.${LABEL}:centos-bases:${base.version}:${arch}`,
        fields: {
          arch,
          label: LABEL,
          os: "centos",
          release: name,
          release_title: base.title,
          subarch: "generic",
          subarches: "generic",
          support_eol: base.eol,
          version: base.version,
        },
        versions: byVersion,
      });
    }
  }
  return products;
}

/** Products, versions and payload paths of a mirror, laid out as on images.maas.io. */
export function planMirror(layout: MirrorLayout): MirrorPlan {
  const dates = Array.from({ length: layout.versions }, (_, i) => versionDate(i));
  const ubuntuVersions = dates.map(yyyymmdd);
  // CentOS bases carry upstream's `_01` serial style: the reader must order both kinds.
  const centosVersions = dates.map((date) => `${yyyymmdd(date)}_01`);
  const productFiles: PlannedProductFile[] = [
    {
      contentId: `com.ubuntu.maas:${LABEL}:v3:download`,
      path: `streams/v1/com.ubuntu.maas:${LABEL}:v3:download.json`,
      products: ubuntuProducts(layout, ubuntuVersions),
    },
    {
      contentId: `com.ubuntu.maas:${LABEL}:centos-bases-download`,
      path: `streams/v1/com.ubuntu.maas:${LABEL}:centos-bases-download.json`,
      products: centosProducts(layout, centosVersions),
    },
  ].filter((file) => file.products.length > 0);
  return {
    productFiles,
    ubuntuVersions,
    updated: updatedStamp(dates[dates.length - 1] ?? new Date(FIRST_VERSION)),
  };
}
