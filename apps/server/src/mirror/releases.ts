// What the synthetic mirror can publish, with the fields upstream gives each release.

export type UbuntuRelease = {
  version: string;
  codename: string;
  lts: boolean;
  eol: string;
  esmEol?: string;
};

export const UBUNTU_RELEASES: Readonly<Record<string, UbuntuRelease>> = {
  focal: { version: "20.04", codename: "Focal Fossa", lts: true, eol: "2025-05-29", esmEol: "2030-04-23" },
  jammy: {
    version: "22.04",
    codename: "Jammy Jellyfish",
    lts: true,
    eol: "2027-04-21",
    esmEol: "2032-04-21",
  },
  noble: { version: "24.04", codename: "Noble Numbat", lts: true, eol: "2029-05-31", esmEol: "2034-04-25" },
  // Non-LTS and already out of support: the catalogue must show both facts.
  oracular: { version: "24.10", codename: "Oracular Oriole", lts: false, eol: "2025-07-10" },
  plucky: { version: "25.04", codename: "Plucky Puffin", lts: false, eol: "2026-01-15" },
};

export type CentosBase = {
  /** The product's `version` and its id segment (`centos-bases:7.0:amd64`). */
  version: string;
  title: string;
  eol: string;
  arches: readonly string[];
};

// Release names as upstream spells them: "centos70", but plain "8".
export const CENTOS_BASES: Readonly<Record<string, CentosBase>> = {
  centos70: { version: "7.0", title: "CentOS 7", eol: "2024-06-30", arches: ["amd64"] },
  "8": { version: "8", title: "CentOS 8", eol: "2029-05-31", arches: ["amd64"] },
};

/** Other spellings accepted for a CentOS release. */
export const CENTOS_ALIASES: Readonly<Record<string, string>> = { centos7: "centos70", centos8: "8" };

export const KERNELS = ["ga", "hwe"] as const;
export type Kernel = (typeof KERNELS)[number];
