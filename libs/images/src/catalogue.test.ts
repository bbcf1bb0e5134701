import { describe, expect, it } from "vitest";
import { buildCatalogue } from "./catalogue";
import type { CatalogueImage } from "./catalogue";

function ubuntu(
  release: string,
  version: string,
  arch: string,
  eol: string | null,
  lts = true,
): CatalogueImage {
  return {
    os: "ubuntu",
    release,
    arch,
    title: lts ? `${version} LTS` : version,
    releaseVersion: version,
    eol,
  };
}

describe("buildCatalogue", () => {
  it("lists Ubuntu releases newest first, LTS from the title, with every arch offered", () => {
    const catalogue = buildCatalogue([
      ubuntu("jammy", "22.04", "amd64", "2027-04-21"),
      ubuntu("oracular", "24.10", "amd64", "2025-07-10", false),
      ubuntu("noble", "24.04", "arm64", "2029-05-31"),
      ubuntu("noble", "24.04", "amd64", "2029-05-31"),
      ubuntu("jammy", "22.04", "s390x", "2027-04-21"),
    ]);
    expect(catalogue.ubuntu).toEqual({
      releases: [
        { release: "oracular", title: "24.10", lts: false, eol: "2025-07-10" },
        { release: "noble", title: "24.04 LTS", lts: true, eol: "2029-05-31" },
        { release: "jammy", title: "22.04 LTS", lts: true, eol: "2027-04-21" },
      ],
      arches: ["amd64", "arm64", "s390x"],
    });
    expect(catalogue.other).toEqual([]);
  });

  it("orders by version number, not text (10.04 after 9.10), and keeps the earliest eol", () => {
    const catalogue = buildCatalogue([
      ubuntu("karmic", "9.10", "i386", null, false),
      ubuntu("lucid", "10.04", "i386", "2015-04-30"),
      ubuntu("lucid", "10.04", "amd64", "2013-05-09"),
    ]);
    expect(catalogue.ubuntu.releases.map((r) => [r.release, r.eol])).toEqual([
      ["lucid", "2013-05-09"],
      ["karmic", null],
    ]);
  });

  it("lists other systems one row per os/release with their own arches", () => {
    const catalogue = buildCatalogue([
      {
        os: "centos",
        release: "centos70",
        arch: "amd64",
        title: "CentOS 7",
        releaseVersion: "7.0",
        eol: null,
      },
      { os: "centos", release: "8", arch: "amd64", title: "CentOS 8", releaseVersion: "8", eol: null },
      { os: "centos", release: "8", arch: "arm64", title: "CentOS 8", releaseVersion: "8", eol: null },
      { os: "alma", release: "9", arch: "amd64", title: "AlmaLinux 9", releaseVersion: null, eol: null },
    ]);
    expect(catalogue.other).toEqual([
      { os: "alma", release: "9", title: "AlmaLinux 9", arches: ["amd64"] },
      { os: "centos", release: "8", title: "CentOS 8", arches: ["amd64", "arm64"] },
      { os: "centos", release: "centos70", title: "CentOS 7", arches: ["amd64"] },
    ]);
    expect(catalogue.ubuntu).toEqual({ releases: [], arches: [] });
  });
});
