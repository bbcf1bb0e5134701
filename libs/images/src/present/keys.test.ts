import { describe, expect, it } from "vitest";
import type { SelectionItem } from "../model";
import {
  archReleases,
  archState,
  archesDiffer,
  deselectArches,
  describeDiff,
  diffKeys,
  keysToItems,
  lastArchOf,
  rebase,
  releaseArches,
  sameKeys,
  selectArches,
  selectionKeys,
  toggleArch,
  toggleRelease,
  toggleReleaseArch,
} from "./keys";

const keys = (...k: string[]) => new Set(k);

describe("selection keys", () => {
  it("round-trips items", () => {
    const items = [
      { os: "centos", release: "centos70", arches: ["amd64"] },
      { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
    ];
    const k = selectionKeys({ items });
    expect([...k].sort()).toEqual(["centos/centos70/amd64", "ubuntu/noble/amd64", "ubuntu/noble/arm64"]);
    expect(keysToItems(k)).toEqual(items);
    expect(sameKeys(k, selectionKeys({ items: keysToItems(k) }))).toBe(true);
  });

  it("splits a release with more arches than one item may carry into several items", () => {
    const arches = Array.from({ length: 70 }, (_, i) => `arch${String(i).padStart(2, "0")}`);
    const k = new Set(arches.map((arch) => `ubuntu/noble/${arch}`));
    const items = keysToItems(k);
    expect(items.map((i) => i.arches.length)).toEqual([32, 32, 6]);
    expect(items.every((i) => i.os === "ubuntu" && i.release === "noble")).toBe(true);
    expect(sameKeys(k, selectionKeys({ items }))).toBe(true);
  });
});

describe("rebase", () => {
  it("replays my additions and removals on their newer selection", () => {
    const base = keys("ubuntu/noble/amd64", "ubuntu/jammy/amd64");
    // I add arm64 to noble and drop jammy.
    const mine = keys("ubuntu/noble/amd64", "ubuntu/noble/arm64");
    // Meanwhile they added CentOS 7 and focal.
    const theirs = keys(
      "ubuntu/noble/amd64",
      "ubuntu/jammy/amd64",
      "centos/centos70/amd64",
      "ubuntu/focal/amd64",
    );
    expect([...rebase(base, mine, theirs)].sort()).toEqual([
      "centos/centos70/amd64",
      "ubuntu/focal/amd64",
      "ubuntu/noble/amd64",
      "ubuntu/noble/arm64",
    ]);
  });

  it("keeps their removals of things I did not touch, and my re-additions", () => {
    const base = keys("a/x/1", "a/y/1");
    const mine = keys("a/x/1", "a/y/1", "a/z/1");
    const theirs = keys("a/x/1"); // they removed a/y
    expect([...rebase(base, mine, theirs)].sort()).toEqual(["a/x/1", "a/z/1"]);
  });

  it("describes a change", () => {
    const diff = diffKeys(keys("ubuntu/jammy/amd64"), keys("ubuntu/noble/amd64", "ubuntu/noble/arm64"));
    expect(describeDiff(diff, (k) => k)).toBe(
      "added ubuntu/noble/amd64, ubuntu/noble/arm64; removed ubuntu/jammy/amd64",
    );
    expect(describeDiff({ added: ["a", "b", "c"], removed: [] }, (k) => k, 2)).toBe("added a, b, 1 more");
    expect(describeDiff({ added: [], removed: [] }, (k) => k)).toBe("no change to the images");
  });
});

describe("Ubuntu releases × architectures", () => {
  const start = keys(
    "ubuntu/noble/amd64",
    "ubuntu/jammy/amd64",
    "ubuntu/jammy/arm64",
    "centos/centos70/amd64",
  );

  it("tells whether an arch is on for all, some or none of the selected releases", () => {
    expect(archState(start, "ubuntu", "amd64")).toBe("on");
    expect(archState(start, "ubuntu", "arm64")).toBe("mixed");
    expect(archState(start, "ubuntu", "ppc64el")).toBe("off");
  });

  it("toggles an arch on every selected release, leaving other OSes alone", () => {
    const on = toggleArch(start, "ubuntu", "arm64", true);
    expect(archState(on, "ubuntu", "arm64")).toBe("on");
    const off = toggleArch(on, "ubuntu", "amd64", false);
    expect([...off].sort()).toEqual(["centos/centos70/amd64", "ubuntu/jammy/arm64", "ubuntu/noble/arm64"]);
  });

  it("toggles a release with the arches in use", () => {
    const added = toggleRelease(start, "ubuntu", "focal", true, ["amd64", "arm64"]);
    expect(added.has("ubuntu/focal/arm64")).toBe(true);
    const removed = toggleRelease(added, "ubuntu", "jammy", false, []);
    expect([...removed].filter((k) => k.includes("jammy"))).toEqual([]);
  });

  it("finds releases an unchecked arch would strand", () => {
    expect(lastArchOf(start, "ubuntu", "amd64")).toEqual(["noble"]);
    expect(lastArchOf(start, "ubuntu", "arm64")).toEqual([]);
  });
});

type Edit = [string, SelectionItem[], [string, string, string[] | null], SelectionItem[]];

describe("select and deselect (the CLI's edits)", () => {
  const noble = { os: "ubuntu", release: "noble", arches: ["amd64"] };
  const jammy = { os: "ubuntu", release: "jammy", arches: ["amd64", "arm64"] };
  it.each([
    ["adds a release", [noble], ["ubuntu", "jammy", ["arm64"]], [{ ...jammy, arches: ["arm64"] }, noble]],
    [
      "merges arches",
      [noble],
      ["ubuntu", "noble", ["arm64", "amd64"]],
      [{ ...noble, arches: ["amd64", "arm64"] }],
    ],
    ["is idempotent", [noble], ["ubuntu", "noble", ["amd64"]], [noble]],
    [
      "normalises what it read",
      [noble, { ...noble, arches: ["s390x"] }],
      ["centos", "centos70", ["amd64"]],
      [
        { os: "centos", release: "centos70", arches: ["amd64"] },
        { ...noble, arches: ["amd64", "s390x"] },
      ],
    ],
  ] as Edit[])("select %s", (_, items, [os, release, arches], expected) => {
    expect(selectArches(items, os, release, arches ?? [])).toEqual(expected);
  });

  it.each([
    ["drops a whole release", [jammy, noble], ["ubuntu", "jammy", null], [noble]],
    [
      "drops one arch",
      [jammy, noble],
      ["ubuntu", "jammy", ["arm64"]],
      [{ ...jammy, arches: ["amd64"] }, noble],
    ],
    ["drops the release with its last arch", [noble], ["ubuntu", "noble", ["amd64"]], []],
    ["leaves other releases alone", [noble], ["ubuntu", "jammy", null], [noble]],
    ["ignores an arch not selected", [noble], ["ubuntu", "noble", ["arm64"]], [noble]],
  ] as Edit[])("deselect %s", (_, items, [os, release, arches], expected) => {
    expect(deselectArches(items, os, release, arches)).toEqual(expected);
  });
});

describe("per-release arches (noble amd64+arm64, jammy amd64)", () => {
  const mixed = keys(
    "ubuntu/noble/amd64",
    "ubuntu/noble/arm64",
    "ubuntu/jammy/amd64",
    "centos/centos70/amd64",
  );
  const same = keys("ubuntu/noble/amd64", "ubuntu/jammy/amd64");

  it.each([
    ["noble", ["amd64", "arm64"]],
    ["jammy", ["amd64"]],
    ["focal", []],
  ])("releaseArches(%s) → %o", (release, arches) => {
    expect(releaseArches(mixed, "ubuntu", release)).toEqual(arches);
  });

  it.each([
    ["amd64", ["jammy", "noble"]],
    ["arm64", ["noble"]],
    ["s390x", []],
  ])("archReleases(%s) → %o", (arch, releases) => {
    expect(archReleases(mixed, "ubuntu", arch)).toEqual(releases);
  });

  it.each([
    ["releases with different arches", mixed, true],
    ["releases with the same arches", same, false],
    ["one release", keys("ubuntu/noble/amd64", "ubuntu/noble/arm64"), false],
    ["nothing", keys(), false],
  ] as [string, Set<string>, boolean][])("archesDiffer: %s → %s", (_, k, differ) => {
    expect(archesDiffer(k, "ubuntu")).toBe(differ);
  });

  it.each([
    ["adds arm64 to jammy only", "jammy", "arm64", true, ["ubuntu/jammy/arm64"], []],
    ["drops arm64 from noble only", "noble", "arm64", false, [], ["ubuntu/noble/arm64"]],
    ["keeps jammy's last arch", "jammy", "amd64", false, null, null],
  ] as [string, string, string, boolean, string[] | null, string[] | null][])(
    "toggleReleaseArch %s",
    (_, release, arch, on, added, removed) => {
      const next = toggleReleaseArch(mixed, "ubuntu", release, arch, on);
      if (added === null) expect(next).toBeNull();
      else expect(diffKeys(mixed, next!)).toEqual({ added, removed });
    },
  );
});
