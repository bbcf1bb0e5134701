import { copyFile, readFile, readdir, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { startRack, type RackProcess } from "../helpers/rack";
import { sha256File } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;
type Item = { ftype: string; path: string; sha256: string; size: number };
type Products = { products: Record<string, { versions: Record<string, { items: Record<string, Item> }> }> };

/**
 * Makes the mirror say what upstream says at release time: noble's hwe-24.04 kernel and initrd are
 * byte-identical to ga-24.04's, under their own paths. Returns { path → sha256 } of every payload.
 */
async function shareGaWithHwe(
  mirror: TestMirror,
): Promise<{ kernelSha: string; paths: Map<string, string> }> {
  const docPath = path.join(mirror.dir, "streams/v1/com.ubuntu.maas:stable:v3:download.json");
  const doc = JSON.parse(await readFile(docPath, "utf8")) as Products;
  const versions = (subarch: string) =>
    Object.entries(doc.products).find(([id]) => id.endsWith(`:${subarch}`))![1].versions;
  const ga = versions("ga-24.04");
  const hwe = versions("hwe-24.04");
  for (const [version, { items }] of Object.entries(hwe)) {
    for (const name of ["boot-kernel", "boot-initrd"]) {
      const from = ga[version]!.items[name]!;
      const to = items[name]!;
      await copyFile(path.join(mirror.dir, from.path), path.join(mirror.dir, to.path));
      items[name] = { ...to, sha256: from.sha256, size: from.size };
    }
  }
  await writeFile(docPath, JSON.stringify(doc, null, 1));
  const newest = Object.keys(ga).sort().at(-1)!;
  const paths = new Map<string, string>();
  for (const image of [ga[newest]!, hwe[newest]!])
    for (const item of Object.values(image.items))
      if (item.ftype !== "manifest") paths.set(item.path, item.sha256);
  return { kernelSha: ga[newest]!.items["boot-kernel"]!.sha256, paths };
}

/** Every file under the rack's current/images, as { relative path → sha256 of its bytes }. */
async function published(rack: RackProcess): Promise<Map<string, string>> {
  const root = path.join(await realpath(path.join(rack.dataDir, "current")), "images");
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else files.set(path.relative(root, full), await sha256File(full));
    }
  };
  await walk(root);
  return files;
}

describe("a sha256 two paths share", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let rack: RackProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({
      releases: ["noble"],
      arches: ["amd64"],
      kernels: ["ga", "hwe"],
      versions: 1,
      sizes: { kernel: 2 * MiB, initrd: 64 * 1024, squashfs: 64 * 1024 },
    });
  });
  afterAll(async () => {
    client?.close();
    await rack?.kill();
    await region?.stop();
    await mirror?.close();
    if (rack) await removeDir(rack.dataDir);
    if (region) await removeDir(region.dataDir);
    if (mirror) await removeDir(mirror.dir);
  });

  it("is downloaded once, and the rack serves it at every path, bytes verified", async () => {
    const { kernelSha, paths } = await shareGaWithHwe(mirror);
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    client = await watch(region.url, region.adminToken);
    await client.command("selection:save", {
      revision: client.state.selection.revision,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
    });
    rack = await startRack({ regionUrl: region.url, name: "rack-1" });
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "rack-synced",
      60_000,
      "rack-synced",
    );
    const version = state.images.get(NOBLE)!.version!;

    const files = await published(rack);
    const expected = new Map(
      [...paths].map(([upstream, sha]) => [`${NOBLE}/${version}/${upstream.split(`/${version}/`)[1]}`, sha]),
    );
    expect(expected.get(`${NOBLE}/${version}/hwe-24.04/generic/boot-kernel`)).toBe(kernelSha);
    expect(expected.get(`${NOBLE}/${version}/ga-24.04/generic/boot-kernel`)).toBe(kernelSha);
    // Every upstream path, each with the bytes upstream lists for it (hashed from the rack's tree).
    expect(Object.fromEntries(files)).toEqual(Object.fromEntries(expected));

    // Downloaded once: by the region from the mirror (one 2 MiB kernel, not two), by the rack from the region.
    expect(mirror.proxy.bytesToClient).toBeLessThan(4 * MiB);
    expect(
      rack.logs().filter((line) => line.msg === "file downloaded" && line.sha256 === kernelSha),
    ).toHaveLength(1);
    expect(state.images.get(NOBLE)!.bytesTotal).toBe(2 * MiB + 64 * 1024 + 64 * 1024);
  });
});
