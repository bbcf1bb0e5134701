import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSource, SourceError } from "@bootstream/images";
import type { SourceContents } from "@bootstream/images";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addVersion, createMirror } from "./create-mirror";
import { MirrorOptionsError } from "./options";
import { serveDirectory } from "./serve";
import type { ServedDirectory } from "./serve";
import { generateSigningKey } from "./signing";

let root: string;
let key: { privateKey: string; publicKey: string };
let otherKey: { privateKey: string; publicKey: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bootstream-mirror-"));
  [key, otherKey] = await Promise.all([generateSigningKey(), generateSigningKey("Somebody else")]);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function sourceError(promise: Promise<unknown>): Promise<SourceError> {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

describe("createMirror with the defaults, served over HTTP", () => {
  let server: ServedDirectory;
  let contents: SourceContents;
  let dir: string;

  beforeAll(async () => {
    dir = join(root, "default");
    await createMirror(dir);
    server = await serveDirectory(dir);
    contents = await readSource({ url: server.url });
  });
  afterAll(async () => {
    await server.close();
  });

  it("offers jammy and noble LTS, an out-of-support non-LTS release, and CentOS 7 and 8", () => {
    expect(contents.catalogue).toEqual({
      ubuntu: {
        releases: [
          { release: "oracular", title: "24.10", lts: false, eol: "2025-07-10" },
          { release: "noble", title: "24.04 LTS", lts: true, eol: "2029-05-31" },
          { release: "jammy", title: "22.04 LTS", lts: true, eol: "2027-04-21" },
        ],
        arches: ["amd64", "arm64"],
      },
      other: [
        { os: "centos", release: "8", title: "CentOS 8", arches: ["amd64"] },
        { os: "centos", release: "centos70", title: "CentOS 7", arches: ["amd64"] },
      ],
    });
    expect(contents.warnings).toEqual([]);
    expect(new Set(contents.images.map((i) => i.version))).toEqual(new Set(["20250615", "20250615_01"]));
  });

  it("lays files out as upstream does", async () => {
    const noble = contents.images.find((i) => i.id === "ubuntu/noble/amd64");
    expect(noble?.files.map((f) => f.path)).toEqual([
      "noble/amd64/20250615/ga-24.04/generic/boot-initrd",
      "noble/amd64/20250615/ga-24.04/generic/boot-kernel",
      "noble/amd64/20250615/hwe-24.04/generic/boot-initrd",
      "noble/amd64/20250615/hwe-24.04/generic/boot-kernel",
      "noble/amd64/20250615/squashfs",
    ]);
    const centos = contents.images.find((i) => i.id === "centos/centos70/amd64");
    expect(centos?.files.map((f) => f.path)).toEqual(["centos/centos70/amd64/20250615_01/root-tgz"]);
    const products = JSON.parse(
      await readFile(join(dir, "streams/v1/com.ubuntu.maas:stable:v3:download.json"), "utf8"),
    ) as {
      products: Record<string, { versions: Record<string, { items: Record<string, { sha256: string }> }> }>;
    };
    // ga and hwe list the one squashfs of their version: same path, same sha256.
    const squashfsOf = (id: string) => products.products[id]?.versions["20250615"]?.items.squashfs?.sha256;
    expect(squashfsOf("com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04")).toBeDefined();
    expect(squashfsOf("com.ubuntu.maas.stable:v3:boot:24.04:amd64:hwe-24.04")).toBe(
      squashfsOf("com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04"),
    );
  });

  it("serves every listed file with the sha256 and size the product files give", async () => {
    const files = contents.images.flatMap((image) => image.files);
    expect(files.length).toBe(28);
    for (const file of files) {
      const response = await fetch(new URL(file.path, server.url));
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(bytes.length).toBe(file.size);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(file.sha256);
    }
  });
});

describe("createMirror options", () => {
  it("gives the same bytes and documents on every run (deterministic payloads)", async () => {
    const options = { releases: ["noble"], arches: ["amd64"], centos: [], payloadSize: 4096 };
    const [a, b] = [join(root, "same-a"), join(root, "same-b")];
    await createMirror(a, options);
    await createMirror(b, options);
    for (const path of ["streams/v1/index.json", "streams/v1/com.ubuntu.maas:stable:v3:download.json"]) {
      expect(await readFile(join(a, path), "utf8")).toBe(await readFile(join(b, path), "utf8"));
    }
  });

  it("sets sizes per kind, the number of versions, and kernels", async () => {
    const dir = join(root, "sized");
    const summary = await createMirror(dir, {
      releases: ["jammy", "oracular"],
      arches: ["arm64"],
      kernels: ["ga"],
      versions: 3,
      centos: ["centos8"],
      payloadSize: 1000,
      sizes: { squashfs: 3000 },
    });
    // CentOS bases are amd64 only: none on an arm64-only mirror.
    expect(summary.images).toEqual(["ubuntu/jammy/arm64", "ubuntu/oracular/arm64"]);
    expect(summary.versions).toEqual(["20250601", "20250615", "20250629"]);
    const contents = await readSource({ url: summary.url });
    const jammy = contents.images.find((i) => i.id === "ubuntu/jammy/arm64");
    expect(jammy?.subarches).toEqual(["ga-22.04"]);
    expect(jammy?.files.map((f) => [f.ftype, f.size])).toEqual([
      ["boot-initrd", 1000],
      ["boot-kernel", 1000],
      ["squashfs", 3000],
    ]);
    expect((await stat(join(dir, "jammy/arm64/20250629/squashfs"))).size).toBe(3000);
  });

  it("refuses unknown releases, kernels and bad version counts", async () => {
    await expect(createMirror(join(root, "bad"), { releases: ["warty"] })).rejects.toThrow(
      MirrorOptionsError,
    );
    await expect(createMirror(join(root, "bad"), { kernels: ["edge"] })).rejects.toThrow(/kernels must be/);
    await expect(createMirror(join(root, "bad"), { versions: 0 })).rejects.toThrow(/versions must be/);
    await expect(createMirror(join(root, "bad"), { releases: [], centos: [] })).rejects.toThrow(
      /nothing to publish/,
    );
  });
});

describe("addVersion", () => {
  it("publishes a newer version the reader picks up, keeping the payloads already written", async () => {
    const dir = join(root, "growing");
    const options = { releases: ["noble"], arches: ["amd64"], centos: ["centos70"], payloadSize: 2048 };
    const first = await createMirror(dir, options);
    const kernel = join(dir, "noble/amd64/20250615/ga-24.04/generic/boot-kernel");
    const before = await stat(kernel);
    expect((await readSource({ url: first.url })).images.map((i) => i.version)).toEqual([
      "20250615_01",
      "20250615",
    ]);

    const second = await addVersion(dir);
    expect(second.versions).toEqual(["20250601", "20250615", "20250629"]);
    // noble: two kernels, two initrds, a squashfs and its manifest; centos: root-tgz and manifest.
    expect(second.written).toBe(8);
    const contents = await readSource({ url: second.url });
    expect(contents.images.map((i) => [i.id, i.version])).toEqual([
      ["centos/centos70/amd64", "20250629_01"],
      ["ubuntu/noble/amd64", "20250629"],
    ]);
    expect((await stat(kernel)).mtimeMs).toBe(before.mtimeMs);
  });

  it("needs the key again for a signed mirror, and refuses a directory it did not make", async () => {
    const dir = join(root, "signed-growing");
    await createMirror(dir, {
      releases: ["noble"],
      arches: ["amd64"],
      centos: [],
      signingKey: key.privateKey,
    });
    await expect(addVersion(dir)).rejects.toThrow(/is signed: give its signing key/);
    const grown = await addVersion(dir, { signingKey: key.privateKey });
    const contents = await readSource({ url: grown.url, keyring: key.publicKey });
    expect(contents.images[0]?.version).toBe("20250629");
    await expect(addVersion(join(root, "nothing-here"))).rejects.toThrow(/not a mirror made by/);
  });
});

describe("a signed mirror", () => {
  let dir: string;
  let server: ServedDirectory;

  beforeAll(async () => {
    dir = join(root, "signed");
    await createMirror(dir, { arches: ["amd64"], signingKey: key.privateKey });
    server = await serveDirectory(dir);
  });
  afterAll(async () => {
    await server.close();
  });

  it("verifies with the signing key's public half, and reads as the unsigned copy does", async () => {
    const signed = await readSource({ url: server.url, keyring: key.publicKey });
    const unsigned = await readSource({ url: server.url });
    expect(signed.signed).toBe(true);
    expect(signed.images).toEqual(unsigned.images);
    const index = await readFile(join(dir, "streams/v1/index.sjson"), "utf8");
    expect(index).toMatch(/^-----BEGIN PGP SIGNED MESSAGE-----/);
    expect(index).toContain('"path": "streams/v1/com.ubuntu.maas:stable:v3:download.sjson"');
  });

  it("is refused with one byte of index.sjson changed", async () => {
    const path = join(dir, "streams/v1/index.sjson");
    const original = await readFile(path, "utf8");
    const at = original.indexOf('"index:1.0"') + 8;
    await writeFile(path, `${original.slice(0, at)}9${original.slice(at + 1)}`);
    try {
      const error = await sourceError(readSource({ url: server.url, keyring: key.publicKey }));
      expect(error.message).toBe(
        `${server.url}streams/v1/index.sjson: bad signature (Signed digest did not match)`,
      );
    } finally {
      await writeFile(path, original);
    }
  });

  it("is refused when verified against another key", async () => {
    const error = await sourceError(readSource({ url: server.url, keyring: otherKey.publicKey }));
    expect(error.message).toMatch(/index\.sjson: signed by unknown key [0-9a-f]{16}/);
  });

  it("drops its signed documents when re-made unsigned, so none go stale", async () => {
    const copy = join(root, "signed-then-not");
    await createMirror(copy, {
      releases: ["noble"],
      arches: ["amd64"],
      centos: [],
      signingKey: key.privateKey,
    });
    await createMirror(copy, { releases: ["noble"], arches: ["amd64"], centos: [] });
    await expect(stat(join(copy, "streams/v1/index.sjson"))).rejects.toThrow(/ENOENT/);
    await expect(readSource({ url: `file://${copy}/`, keyring: key.publicKey })).rejects.toThrow(/not found/);
  });
});
