import { describe, expect, it } from "vitest";
import type { ImageFileRow, ImageRow } from "../db/entities";
import { buildManifestImages, manifestName } from "./manifest";

const image = (id: string, version: string): ImageRow => ({
  id,
  os: "ubuntu",
  release: "noble",
  arch: "amd64",
  title: "24.04 LTS",
  version,
  targetVersion: null,
  state: "synced",
  bytesTotal: 0,
  bytesDone: 0,
  error: null,
  nextState: null,
  nextBytesTotal: 0,
  nextBytesDone: 0,
  nextError: null,
  warning: null,
  syncedAt: null,
  updatedAt: "",
});
const file = (path: string, sha: string, version = "20250615"): ImageFileRow => ({
  imageId: "ubuntu/noble/amd64",
  version,
  sha256: sha.repeat(64),
  size: 1,
  ftype: "x",
  path,
});

describe("manifest names", () => {
  it("cuts upstream paths at their own version directory, whatever the version's style", () => {
    expect(manifestName("noble/amd64/20250615/ga-24.04/generic/boot-kernel")).toBe(
      "ga-24.04/generic/boot-kernel",
    );
    expect(manifestName("centos/centos70/amd64/20240604_01/root-tgz")).toBe("root-tgz");
    expect(manifestName("jammy/arm64/20231004.0/squashfs")).toBe("squashfs");
    expect(manifestName("odd/layout/file")).toBe("odd/layout/file");
  });

  it("never lists one name twice in an image, even when a product lags behind the image's version", () => {
    const [noble] = buildManifestImages(
      [image("ubuntu/noble/amd64", "20250615")],
      [
        file("noble/amd64/20250615/squashfs", "a"),
        file("noble/amd64/20250601/squashfs", "b"), // the hwe product's newest is older
        file("noble/amd64/20250615/ga-24.04/generic/boot-kernel", "c"),
      ],
    );
    const names = noble!.files.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("ga-24.04/generic/boot-kernel");
    expect(names).toContain("noble/amd64/20250601/squashfs");
  });

  it("lists every path of a sha256 two paths share, each under its own name", () => {
    const [noble] = buildManifestImages(
      [image("ubuntu/noble/amd64", "20250615")],
      [
        file("noble/amd64/20250615/ga-24.04/generic/boot-kernel", "a"),
        file("noble/amd64/20250615/hwe-24.04/generic/boot-kernel", "a"),
        file("noble/amd64/20250615/squashfs", "b"),
      ],
    );
    expect(noble!.files.map((f) => [f.name, f.sha256[0]])).toEqual([
      ["ga-24.04/generic/boot-kernel", "a"],
      ["hwe-24.04/generic/boot-kernel", "a"],
      ["squashfs", "b"],
    ]);
  });
});

describe("manifest and corrupt files", () => {
  it("leaves out an image whose held version needs a withheld file, and only that one", () => {
    const images = [
      image("ubuntu/noble/amd64", "20250615"),
      { ...image("ubuntu/jammy/amd64", "20250615"), release: "jammy" },
    ];
    const files = [
      file("noble/amd64/20250615/squashfs", "a"),
      { ...file("jammy/amd64/20250615/squashfs", "b"), imageId: "ubuntu/jammy/amd64" },
    ];
    expect(buildManifestImages(images, files).map((i) => i.id)).toEqual([
      "ubuntu/jammy/amd64",
      "ubuntu/noble/amd64",
    ]);
    expect(buildManifestImages(images, files, new Set(["a".repeat(64)])).map((i) => i.id)).toEqual([
      "ubuntu/jammy/amd64",
    ]);
  });
});
