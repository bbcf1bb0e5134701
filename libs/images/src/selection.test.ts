import { describe, expect, it } from "vitest";
import type { Catalogue } from "./model";
import {
  defaultSelectionItems,
  normaliseSelectionItems,
  validateSelectionAgainstCatalogue,
} from "./selection";

const catalogue: Catalogue = {
  ubuntu: {
    releases: [
      { release: "oracular", title: "24.10", lts: false, eol: "2025-07-10" },
      { release: "noble", title: "24.04 LTS", lts: true, eol: "2029-05-31" },
      { release: "jammy", title: "22.04 LTS", lts: true, eol: "2027-04-21" },
    ],
    arches: ["amd64", "arm64"],
  },
  other: [{ os: "centos", release: "centos70", title: "CentOS 7", arches: ["amd64"] }],
};

describe("defaultSelectionItems", () => {
  it("selects the newest LTS release on amd64, skipping a newer non-LTS release", () => {
    expect(defaultSelectionItems(catalogue)).toEqual([{ os: "ubuntu", release: "noble", arches: ["amd64"] }]);
  });

  it("selects nothing when there is no LTS release or no amd64", () => {
    expect(defaultSelectionItems({ ...catalogue, ubuntu: { releases: [], arches: ["amd64"] } })).toEqual([]);
    expect(
      defaultSelectionItems({ ...catalogue, ubuntu: { ...catalogue.ubuntu, arches: ["arm64"] } }),
    ).toEqual([]);
  });
});

describe("validateSelectionAgainstCatalogue", () => {
  it("accepts what the catalogue offers", () => {
    expect(
      validateSelectionAgainstCatalogue(
        [
          { os: "ubuntu", release: "jammy", arches: ["amd64", "arm64"] },
          { os: "centos", release: "centos70", arches: ["amd64"] },
        ],
        catalogue,
      ),
    ).toEqual([]);
  });

  it("names unknown releases, unknown arches and empty arch lists", () => {
    expect(
      validateSelectionAgainstCatalogue(
        [
          { os: "ubuntu", release: "focal", arches: ["amd64"] },
          { os: "ubuntu", release: "noble", arches: ["amd64", "s390x"] },
          { os: "centos", release: "centos70", arches: ["arm64"] },
          { os: "centos", release: "8", arches: ["amd64"] },
          { os: "ubuntu", release: "jammy", arches: [] },
        ],
        catalogue,
      ),
    ).toEqual([
      "ubuntu/focal is not offered by the boot source",
      "ubuntu/noble: s390x not offered (offered: amd64, arm64)",
      "centos/centos70: arm64 not offered (offered: amd64)",
      "centos/8 is not offered by the boot source",
      "ubuntu/jammy selects no architecture",
    ]);
  });
});

describe("validateSelectionAgainstCatalogue with what is selected now", () => {
  // jammy/arm64 and focal were selected, and the source offers neither any more.
  const kept = [
    { os: "ubuntu", release: "focal", arches: ["amd64"] },
    { os: "ubuntu", release: "noble", arches: ["amd64", "s390x"] },
  ];
  it.each<[string, { os: string; release: string; arches: string[] }[], string[]]>([
    [
      "keeps a release the source dropped",
      [...kept, { os: "ubuntu", release: "jammy", arches: ["amd64"] }],
      [],
    ],
    ["drops an arch of it", [{ os: "ubuntu", release: "noble", arches: ["amd64"] }, kept[0]!], []],
    ["drops the release", [kept[1]!], []],
    [
      "refuses to add an arch the source does not offer",
      [{ os: "ubuntu", release: "focal", arches: ["amd64", "arm64"] }],
      ["ubuntu/focal is not offered by the boot source"],
    ],
    [
      "refuses an arch that was never selected beside one kept",
      [{ os: "ubuntu", release: "noble", arches: ["amd64", "ppc64el", "s390x"] }],
      ["ubuntu/noble: ppc64el not offered (offered: amd64, arm64)"],
    ],
    [
      "refuses a release never selected",
      [{ os: "centos", release: "8", arches: ["amd64"] }],
      ["centos/8 is not offered by the boot source"],
    ],
  ])("%s", (_name, items, problems) => {
    expect(validateSelectionAgainstCatalogue(items, catalogue, kept)).toEqual(problems);
  });
});

describe("normaliseSelectionItems", () => {
  it("merges duplicate os/release, dedupes and sorts arches, sorts items and drops empty ones", () => {
    expect(
      normaliseSelectionItems([
        { os: "ubuntu", release: "noble", arches: ["arm64", "amd64", "arm64"] },
        { os: "centos", release: "centos70", arches: ["amd64"] },
        { os: "ubuntu", release: "jammy", arches: [] },
        { os: "ubuntu", release: "noble", arches: ["amd64", "s390x"] },
      ]),
    ).toEqual([
      { os: "centos", release: "centos70", arches: ["amd64"] },
      { os: "ubuntu", release: "noble", arches: ["amd64", "arm64", "s390x"] },
    ]);
  });

  it("is idempotent and does not touch its input", () => {
    const items = [{ os: "ubuntu", release: "noble", arches: ["arm64", "amd64"] }];
    const once = normaliseSelectionItems(items);
    expect(normaliseSelectionItems(once)).toEqual(once);
    expect(items[0]?.arches).toEqual(["arm64", "amd64"]);
  });
});
