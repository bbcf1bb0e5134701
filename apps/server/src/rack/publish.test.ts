import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContentStore } from "@bootstream/images";
import type { Manifest, ManifestImage } from "@bootstream/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseManifest } from "./manifest";
import { publishSnapshot, readPublished, removeStaleSnapshots } from "./publish";

let dataDir: string;
let store: ContentStore;

beforeEach(async () => {
  dataDir = await fsp.mkdtemp(join(tmpdir(), "bootstream-rack-publish-"));
  store = await ContentStore.open(dataDir);
});

afterEach(async () => {
  await fsp.rm(dataDir, { recursive: true, force: true });
});

/** Puts bytes into the store the way the downloader does, and returns the manifest entry. */
async function stored(text: string, name: string) {
  const bytes = Buffer.from(text);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await fsp.writeFile(store.partialPath(sha256), bytes);
  await store.installPartial(sha256, sha256);
  return { sha256, size: bytes.length, ftype: "test", name };
}

async function sampleImages(version: string): Promise<ManifestImage[]> {
  return [
    {
      id: "ubuntu/noble/amd64",
      version,
      files: [
        await stored(`kernel ${version}`, "ga-24.04/generic/boot-kernel"),
        await stored(`initrd ${version}`, "ga-24.04/generic/boot-initrd"),
        await stored("squashfs (shared by versions)", "squashfs"),
      ],
    },
    { id: "centos/centos70/amd64", version: "20240101", files: [await stored("centos root", "root-tgz")] },
  ];
}

const pathOf = (sha: string) => store.pathOf(sha);

describe("publishSnapshot", () => {
  it("lays out hard links under current/images/<os>/<release>/<arch>/<version>/<name> with a manifest.json", async () => {
    const manifest: Manifest = { generation: 3, images: await sampleImages("20240101") };
    const published = await publishSnapshot(dataDir, manifest, pathOf, new Date("2024-05-01T00:00:00Z"));

    expect(published.snapshot).toMatch(/^3-[0-9a-f]{12}$/);
    expect(await fsp.readlink(join(dataDir, "current"))).toBe(`snapshots/${published.snapshot}`);
    const kernel = join(dataDir, "current/images/ubuntu/noble/amd64/20240101/ga-24.04/generic/boot-kernel");
    expect(await fsp.readFile(kernel, "utf8")).toBe("kernel 20240101");
    const file = manifest.images[0]!.files[0]!;
    // A hard link, not a copy: the same inode as the store's file.
    expect((await fsp.stat(kernel)).ino).toBe((await fsp.stat(store.pathOf(file.sha256))).ino);
    expect(
      await fsp.readFile(join(dataDir, "current/images/centos/centos70/amd64/20240101/root-tgz"), "utf8"),
    ).toBe("centos root");

    const written = JSON.parse(
      await fsp.readFile(join(dataDir, "current/manifest.json"), "utf8"),
    ) as Manifest & {
      publishedAt: string;
    };
    expect(written).toEqual({ ...manifest, publishedAt: "2024-05-01T00:00:00.000Z" });
    expect(published.inventory).toEqual(manifest.images.flatMap((i) => i.files.map((f) => f.sha256)).sort());
    expect(await fsp.readdir(dataDir)).not.toContain(expect.stringMatching(/^current\.tmp-/));
  });

  it("switches current to the new set in one step and leaves the old snapshot for removeStaleSnapshots", async () => {
    const first = await publishSnapshot(
      dataDir,
      { generation: 1, images: await sampleImages("20240101") },
      pathOf,
    );
    const second = await publishSnapshot(
      dataDir,
      { generation: 2, images: await sampleImages("20240202") },
      pathOf,
    );

    expect(second.snapshot).not.toBe(first.snapshot);
    expect(await fsp.readlink(join(dataDir, "current"))).toBe(`snapshots/${second.snapshot}`);
    expect(await fsp.readdir(join(dataDir, "current/images/ubuntu/noble/amd64"))).toEqual(["20240202"]);
    expect((await fsp.readdir(join(dataDir, "snapshots"))).sort()).toEqual(
      [first.snapshot, second.snapshot].sort(),
    );

    expect(await removeStaleSnapshots(dataDir, second.snapshot)).toEqual([first.snapshot]);
    expect(await fsp.readdir(join(dataDir, "snapshots"))).toEqual([second.snapshot]);
    // Removing the old snapshot's links leaves the store (and the new snapshot) untouched.
    expect(
      await fsp.readFile(join(dataDir, "current/images/ubuntu/noble/amd64/20240202/squashfs"), "utf8"),
    ).toBe("squashfs (shared by versions)");
  });

  it("never lets a reader of current/ see a mix of two sets or a missing link", async () => {
    const a: Manifest = { generation: 1, images: await sampleImages("A") };
    const b: Manifest = { generation: 2, images: await sampleImages("B") };
    await publishSnapshot(dataDir, a, pathOf);

    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        // A booting machine resolves the link once and reads the whole image from there.
        const root = await fsp.realpath(join(dataDir, "current"));
        const manifest = JSON.parse(await fsp.readFile(join(root, "manifest.json"), "utf8")) as Manifest;
        const version = manifest.images[0]!.version;
        expect(await fsp.readdir(join(root, "images/ubuntu/noble/amd64"))).toEqual([version]);
        const kernel = join(root, `images/ubuntu/noble/amd64/${version}/ga-24.04/generic/boot-kernel`);
        expect(await fsp.readFile(kernel, "utf8")).toBe(`kernel ${version}`);
        reads++;
      }
    })();
    for (let i = 0; i < 30; i++) await publishSnapshot(dataDir, i % 2 ? a : b, pathOf);
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(0);
  });

  it("throws and keeps the old current when a file is not in the store; the half-built snapshot is cleaned", async () => {
    const old = await publishSnapshot(
      dataDir,
      { generation: 1, images: await sampleImages("20240101") },
      pathOf,
    );
    const images = await sampleImages("20240202");
    await store.remove(images[0]!.files[1]!.sha256);

    await expect(publishSnapshot(dataDir, { generation: 2, images }, pathOf)).rejects.toThrow(/ENOENT/);
    expect(await fsp.readlink(join(dataDir, "current"))).toBe(`snapshots/${old.snapshot}`);
    expect((await readPublished(dataDir))?.manifest?.generation).toBe(1);

    await removeStaleSnapshots(dataDir, old.snapshot);
    expect(await fsp.readdir(join(dataDir, "snapshots"))).toEqual([old.snapshot]);
  });

  it("publishes an empty manifest as an empty set", async () => {
    await publishSnapshot(dataDir, { generation: 1, images: await sampleImages("20240101") }, pathOf);
    const empty = await publishSnapshot(dataDir, { generation: 2, images: [] }, pathOf);
    expect(empty.inventory).toEqual([]);
    expect(await fsp.readdir(join(dataDir, "current"))).toEqual(["manifest.json"]);
  });
});

describe("readPublished", () => {
  it("is null before anything was published", async () => {
    expect(await readPublished(dataDir)).toBeNull();
  });

  it("reads back the inventory, generation and time of the published set", async () => {
    const manifest: Manifest = { generation: 7, images: await sampleImages("20240101") };
    const published = await publishSnapshot(dataDir, manifest, pathOf, new Date("2024-05-01T00:00:00Z"));
    expect(await readPublished(dataDir)).toEqual({
      snapshot: published.snapshot,
      manifest,
      publishedAt: "2024-05-01T00:00:00.000Z",
      inventory: published.inventory,
      complete: true,
    });
  });

  it("leaves out a file missing from the snapshot and says the set is incomplete", async () => {
    const manifest: Manifest = { generation: 1, images: await sampleImages("20240101") };
    await publishSnapshot(dataDir, manifest, pathOf);
    const lost = manifest.images[0]!.files[0]!;
    await fsp.rm(join(dataDir, "current/images/ubuntu/noble/amd64/20240101", lost.name));

    const read = await readPublished(dataDir);
    expect(read?.complete).toBe(false);
    expect(read?.inventory).not.toContain(lost.sha256);
    expect(read?.inventory).toHaveLength(3);
  });

  it("treats an unreadable manifest.json as an empty, incomplete set", async () => {
    const published = await publishSnapshot(
      dataDir,
      { generation: 1, images: await sampleImages("1") },
      pathOf,
    );
    await fsp.writeFile(join(dataDir, "current/manifest.json"), "{ torn");
    expect(await readPublished(dataDir)).toMatchObject({
      snapshot: published.snapshot,
      manifest: null,
      inventory: [],
      complete: false,
    });
  });
});

describe("removeStaleSnapshots", () => {
  it("removes snapshots that current does not point at and temporary links of a crashed switch", async () => {
    const published = await publishSnapshot(
      dataDir,
      { generation: 1, images: await sampleImages("1") },
      pathOf,
    );
    await fsp.mkdir(join(dataDir, "snapshots/2-deadbeef0000/images"), { recursive: true });
    await fsp.symlink("snapshots/2-deadbeef0000", join(dataDir, "current.tmp-abc"));

    expect(await removeStaleSnapshots(dataDir, published.snapshot)).toEqual(["2-deadbeef0000"]);
    expect((await fsp.readdir(dataDir)).sort()).toEqual(["current", "partial", "snapshots", "store"]);
  });
});

describe("parseManifest", () => {
  const sha = "a".repeat(64);
  const file = (name: string, size = 1, sha256 = sha) => ({ sha256, size, ftype: "x", name });
  const manifest = (...images: ManifestImage[]) => ({ generation: 1, images });

  it("accepts nested file names", () => {
    expect(
      parseManifest(manifest({ id: "ubuntu/noble/amd64", version: "1", files: [file("a/b/c")] })).ok,
    ).toBe(true);
  });

  it.each([
    [
      "a name that climbs out",
      manifest({ id: "ubuntu/noble/amd64", version: "1", files: [file("../../etc/x")] }),
    ],
    ["an absolute name", manifest({ id: "ubuntu/noble/amd64", version: "1", files: [file("/etc/x")] })],
    ["a version that climbs out", manifest({ id: "ubuntu/noble/amd64", version: "..", files: [] })],
    ["an id that is not os/release/arch", manifest({ id: "ubuntu/noble", version: "1", files: [] })],
    [
      "two files at one path",
      manifest({ id: "a/b/c", version: "1", files: [file("k"), file("k", 1, "b".repeat(64))] }),
    ],
    [
      "a file where a directory goes",
      manifest({ id: "a/b/c", version: "1", files: [file("k"), file("k/x", 1)] }),
    ],
    ["one sha with two sizes", manifest({ id: "a/b/c", version: "1", files: [file("k", 1), file("j", 2)] })],
    ["a bad sha256", manifest({ id: "a/b/c", version: "1", files: [file("k", 1, "XYZ")] })],
  ])("rejects %s", (_what, value) => {
    expect(parseManifest(value).ok).toBe(false);
  });
});
