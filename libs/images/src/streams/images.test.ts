import { describe, expect, it } from "vitest";
import { parseProductsDocument } from "./documents";
import { collectImages } from "./images";
import { newestProducts } from "./products";

const sha = (c: string) => c.repeat(64);
const item = (ftype: string, path: string, c: string, size = 1) => ({ ftype, path, sha256: sha(c), size });

function collect(document: Record<string, unknown>) {
  const parsed = parseProductsDocument({ format: "products:1.0", ...document }, "products.json");
  return collectImages(newestProducts(parsed, "products.json"));
}

describe("collectImages", () => {
  it("inherits fields from the top level and the product, as simplestreams condenses them", () => {
    const { images } = collect({
      os: "ubuntu",
      arch: "amd64",
      release_title: "24.04 LTS",
      products: {
        "p:ga": {
          release: "noble",
          version: 24.04,
          subarch: "ga-24.04",
          versions: {
            "20250101": { items: { k: { ftype: "boot-kernel", path: "k", sha256: sha("a"), size: "7" } } },
          },
        },
      },
    });
    expect(images).toMatchObject([
      {
        id: "ubuntu/noble/amd64",
        title: "24.04 LTS",
        releaseVersion: "24.04",
        files: [{ ftype: "boot-kernel", size: 7, path: "k", product: "p:ga", version: "20250101" }],
      },
    ]);
  });

  it("lets a version or item override what it inherits", () => {
    const { images } = collect({
      products: {
        p: {
          os: "ubuntu",
          release: "noble",
          arch: "amd64",
          ftype: "manifest",
          versions: {
            "1": {
              items: { k: { path: "k", sha256: sha("a"), size: 1, ftype: "boot-kernel" }, m: { path: "m" } },
            },
          },
        },
      },
    });
    expect(images[0]?.files.map((f) => f.ftype)).toEqual(["boot-kernel"]);
  });

  it("keeps root-image.gz only where the version has no squashfs", () => {
    const { images } = collect({
      products: {
        old: {
          os: "ubuntu",
          release: "xenial",
          arch: "amd64",
          versions: { "1": { items: { r: item("root-image.gz", "x/root-image.gz", "a") } } },
        },
        new: {
          os: "ubuntu",
          release: "noble",
          arch: "amd64",
          versions: {
            "1": {
              items: {
                r: item("root-image.gz", "n/root-image.gz", "b"),
                s: item("squashfs", "n/squashfs", "c"),
              },
            },
          },
        },
      },
    });
    expect(images.map((i) => [i.id, i.files.map((f) => f.ftype)])).toEqual([
      ["ubuntu/noble/amd64", ["squashfs"]],
      ["ubuntu/xenial/amd64", ["root-image.gz"]],
    ]);
  });

  it("keeps dtbs, root tarballs and root-dd images; skips manifests and unknown ftypes", () => {
    const { images } = collect({
      products: {
        p: {
          os: "custom",
          release: "r",
          arch: "arm64",
          versions: {
            "1": {
              items: {
                a: item("boot-dtb", "a", "1"),
                b: item("root-txz", "b", "2"),
                c: item("root-dd.xz", "c", "3"),
                d: item("manifest", "d", "4"),
                e: item("vmlinuz.efi.signed", "e", "5"),
              },
            },
          },
        },
      },
    });
    expect(images[0]?.files.map((f) => f.ftype)).toEqual(["boot-dtb", "root-txz", "root-dd.xz"]);
  });

  it("refuses one sha256 listed with two sizes", () => {
    expect(() =>
      collect({
        products: {
          a: {
            os: "ubuntu",
            release: "noble",
            arch: "amd64",
            versions: { "1": { items: { s: item("squashfs", "s", "a", 1) } } },
          },
          b: {
            os: "ubuntu",
            release: "noble",
            arch: "amd64",
            versions: { "1": { items: { s: item("squashfs", "s", "a", 2) } } },
          },
        },
      }),
    ).toThrow(/sha256 a{64} is listed with sizes 1 \(s\) and 2 \(s\)/);
  });

  it("keeps every path of a sha256 two products share (ga and hwe kernels at release time)", () => {
    const kernel = (subarch: string) => ({
      os: "ubuntu",
      release: "noble",
      arch: "amd64",
      subarch,
      versions: {
        "20240423": {
          items: {
            "boot-kernel": item("boot-kernel", `noble/amd64/20240423/${subarch}/generic/boot-kernel`, "e", 9),
            squashfs: item("squashfs", "noble/amd64/20240423/squashfs", "d", 50),
          },
        },
      },
    });
    const { images, warnings } = collect({ products: { ga: kernel("ga-24.04"), hwe: kernel("hwe-24.04") } });
    expect(warnings).toEqual([]);
    expect(images[0]?.files.map((f) => [f.path, f.sha256[0]])).toEqual([
      ["noble/amd64/20240423/ga-24.04/generic/boot-kernel", "e"],
      ["noble/amd64/20240423/hwe-24.04/generic/boot-kernel", "e"],
      // One path two products both list: once.
      ["noble/amd64/20240423/squashfs", "d"],
    ]);
  });

  it("keeps the first of one path listed with two contents, with a warning", () => {
    const product = (c: string) => ({
      os: "ubuntu",
      release: "noble",
      arch: "amd64",
      versions: { "1": { items: { s: item("squashfs", "s", c, 1) } } },
    });
    const { images, warnings } = collect({ products: { a: product("a"), b: product("b") } });
    expect(images[0]?.files.map((f) => f.sha256[0])).toEqual(["a"]);
    expect(warnings).toEqual([
      expect.stringMatching(/path s is listed with sha256 a{64} \(a\) and b{64} \(b\); kept the first/),
    ]);
  });

  it("skips, with a warning, products that are not plain os/release/arch images", () => {
    const { images, warnings } = collect({
      products: {
        nameless: { versions: { "1": { items: {} } } },
        slashed: { os: "ubuntu", release: "no/ble", arch: "amd64", versions: { "1": { items: {} } } },
        empty: { os: "ubuntu", release: "noble", arch: "amd64", versions: { "1": { items: {} } } },
      },
    });
    expect(images).toEqual([]);
    expect(warnings).toEqual([
      "products.json: skipped nameless: it names no os, release and arch",
      'products.json: skipped slashed: os/release/arch "ubuntu/no/ble/amd64" is not plain',
      "products.json: empty 1 has no image files",
    ]);
  });
});
