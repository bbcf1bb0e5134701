import { describe, expect, it } from "vitest";
import { planImport, selectedImageIds, unreferencedFiles, type OfferedImage } from "./plan";

const sha = (c: string) => c.repeat(64);
const file = (c: string, size: number, ftype = "boot-kernel") => ({
  sha256: sha(c),
  size,
  path: `x/${c}`,
  ftype,
});

const noble: OfferedImage = {
  os: "ubuntu",
  release: "noble",
  arch: "amd64",
  title: "24.04 LTS",
  version: "20250615",
  files: [
    file("a", 10),
    file("b", 20, "boot-initrd"),
    file("c", 100, "squashfs"),
    file("c", 100, "squashfs"),
  ],
};
const nobleArm: OfferedImage = {
  ...noble,
  arch: "arm64",
  files: [file("d", 10), file("c", 100, "squashfs")],
};
const jammy: OfferedImage = {
  ...noble,
  release: "jammy",
  title: "22.04 LTS",
  version: "20240101",
  files: [file("e", 5)],
};

describe("planImport", () => {
  it("expands a selection into one image per arch, deduplicating files by sha256", () => {
    const plan = planImport({
      selection: [{ os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] }],
      offered: [noble, nobleArm, jammy],
      held: new Map(),
      stored: new Set(),
    });
    expect(plan.images.map((i) => i.id)).toEqual(["ubuntu/noble/amd64", "ubuntu/noble/arm64"]);
    expect(plan.images[0]).toMatchObject({
      version: "20250615",
      bytesTotal: 130,
      bytesStored: 0,
      title: "24.04 LTS",
    });
    expect(plan.images[0]!.files).toHaveLength(3);
    // The squashfs both arches share is fetched once, for both, and first because it is the biggest.
    expect(plan.fetch.map((f) => [f.file.sha256[0], f.images])).toEqual([
      ["c", ["ubuntu/noble/amd64", "ubuntu/noble/arm64"]],
      ["b", ["ubuntu/noble/amd64"]],
      ["a", ["ubuntu/noble/amd64"]],
      ["d", ["ubuntu/noble/arm64"]],
    ]);
  });

  it("keeps every path of a sha256 two paths share, and fetches and counts it once", () => {
    const kernel = { sha256: sha("k"), size: 9, ftype: "boot-kernel" };
    const image: OfferedImage = {
      ...noble,
      files: [
        { ...kernel, path: "noble/amd64/20250615/ga-24.04/generic/boot-kernel" },
        { ...kernel, path: "noble/amd64/20250615/hwe-24.04/generic/boot-kernel" },
        file("c", 100, "squashfs"),
      ],
    };
    const plan = planImport({
      selection: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
      offered: [image],
      held: new Map(),
      stored: new Set(),
    });
    expect(plan.images[0]!.files.map((f) => f.path)).toEqual([
      "noble/amd64/20250615/ga-24.04/generic/boot-kernel",
      "noble/amd64/20250615/hwe-24.04/generic/boot-kernel",
      "x/c",
    ]);
    expect(plan.images[0]!.missing.map((f) => f.sha256[0])).toEqual(["k", "c"]);
    expect(plan.images[0]).toMatchObject({ bytesTotal: 109, bytesStored: 0 });
    expect(plan.fetch.map((f) => f.file.sha256[0])).toEqual(["c", "k"]);
    // Once the kernel is stored, neither path is missing.
    const later = planImport({
      selection: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
      offered: [image],
      held: new Map(),
      stored: new Set([sha("k")]),
    });
    expect(later.images[0]).toMatchObject({ bytesStored: 9 });
    expect(later.images[0]!.files).toHaveLength(3);
    expect(later.fetch.map((f) => f.file.sha256[0])).toEqual(["c"]);
  });

  it("fetches only what the store lacks", () => {
    const plan = planImport({
      selection: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
      offered: [noble],
      held: new Map(),
      stored: new Set([sha("a"), sha("c")]),
    });
    expect(plan.fetch.map((f) => f.file.sha256[0])).toEqual(["b"]);
    expect(plan.images[0]).toMatchObject({ bytesStored: 110, missing: [file("b", 20, "boot-initrd")] });
  });

  it("removes held images that are no longer selected and reports selected images the source lacks", () => {
    const plan = planImport({
      selection: [{ os: "ubuntu", release: "focal", arches: ["amd64"] }],
      offered: [noble],
      held: new Map([["ubuntu/noble/amd64", { version: "20250615", state: "synced" as const }]]),
      stored: new Set(),
    });
    expect(plan.remove).toEqual(["ubuntu/noble/amd64"]);
    expect(plan.unavailable).toEqual([
      { id: "ubuntu/focal/amd64", os: "ubuntu", release: "focal", arch: "amd64" },
    ]);
    expect(plan.images).toEqual([]);
  });

  it("plans nothing to fetch when everything is stored", () => {
    const plan = planImport({
      selection: [{ os: "ubuntu", release: "jammy", arches: ["amd64"] }],
      offered: [jammy],
      held: new Map([["ubuntu/jammy/amd64", { version: "20240101", state: "synced" as const }]]),
      stored: new Set([sha("e")]),
    });
    expect(plan.fetch).toEqual([]);
    expect(plan.remove).toEqual([]);
  });
});

describe("selectedImageIds / unreferencedFiles", () => {
  it("lists each image once, sorted", () => {
    expect(
      selectedImageIds([
        { os: "ubuntu", release: "noble", arches: ["arm64", "amd64", "amd64"] },
        { os: "centos", release: "centos70", arches: ["amd64"] },
      ]),
    ).toEqual(["centos/centos70/amd64", "ubuntu/noble/amd64", "ubuntu/noble/arm64"]);
  });

  it("keeps what is needed", () => {
    expect(unreferencedFiles([sha("a"), sha("b"), sha("c")], new Set([sha("b")]))).toEqual([
      sha("a"),
      sha("c"),
    ]);
  });
});
