import { describe, expect, it } from "vitest";
import { parseManifest, type Manifest, type ManifestFile } from "./rack";

const sha = (c: string) => c.repeat(64);
const file = (name: string, c = "a", size = 10): ManifestFile => ({ sha256: sha(c), size, ftype: "x", name });
const image = (id: string, files: ManifestFile[], version = "20250709") => ({ id, version, files });

describe("parseManifest (the region checks what it sends, the rack what it receives)", () => {
  it("takes a manifest whose two paths share one sha256 (ga and hwe kernels)", () => {
    const manifest: Manifest = {
      generation: 3,
      images: [
        image("ubuntu/noble/amd64", [
          file("ga-24.04/generic/boot-kernel"),
          file("hwe-24.04/generic/boot-kernel"),
        ]),
      ],
    };
    expect(parseManifest(manifest)).toEqual({ ok: true, manifest });
  });

  it.each([
    ["a negative generation", { generation: -1, images: [] }, "generation"],
    [
      "a path that climbs out",
      { generation: 1, images: [image("ubuntu/noble/amd64", [file("../../etc/passwd")])] },
      "not a relative path",
    ],
    [
      "an absolute path",
      { generation: 1, images: [image("ubuntu/noble/amd64", [file("/etc/passwd")])] },
      "not a relative path",
    ],
    [
      "an id that is not os/release/arch",
      { generation: 1, images: [image("ubuntu/noble", [])] },
      "not an os/release/arch id",
    ],
    [
      "a version that is a path",
      { generation: 1, images: [image("ubuntu/noble/amd64", [], "..")] },
      "not a plain path segment",
    ],
    [
      "an image listed twice",
      { generation: 1, images: [image("a/b/c", []), image("a/b/c", [])] },
      "listed twice",
    ],
    [
      "two files at one path",
      { generation: 1, images: [image("a/b/c", [file("f", "a"), file("f", "b")])] },
      "listed twice",
    ],
    [
      "a file where a directory must be",
      { generation: 1, images: [image("a/b/c", [file("f", "a"), file("f/g", "b")])] },
      "both a file and a directory",
    ],
    [
      "one sha256 with two sizes",
      { generation: 1, images: [image("a/b/c", [file("f", "a", 1), file("g", "a", 2)])] },
      "sizes 1 and 2",
    ],
    [
      "a bad sha256",
      { generation: 1, images: [image("a/b/c", [{ ...file("f"), sha256: "xyz" }])] },
      "sha256",
    ],
  ])("refuses %s", (_, manifest, message) => {
    const result = parseManifest(manifest);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.error).toContain(message);
  });
});
