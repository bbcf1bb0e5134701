// The real upstream samples (test/fixtures/streams/maas-stable-2025-07), read as they are.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoopbackServer } from "../../../../test/fixtures/streams/loopback-server";
import {
  SAMPLE_DIR,
  UPSTREAM_PATHS,
  writeSampleSource,
} from "../../../../test/fixtures/streams/sample-source";
import { readSource } from "./read-source";
import type { SourceContents, SourceImage } from "./types";

let dir: string;
let current: SourceContents;
let earlier: SourceContents;

function image(contents: SourceContents, id: string): SourceImage {
  const found = contents.images.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no image ${id}`);
  return found;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bootstream-samples-"));
  current = await readSource({ url: await writeSampleSource(join(dir, "current"), "2025-07") });
  earlier = await readSource({ url: await writeSampleSource(join(dir, "earlier"), "2025-07-28") });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("readSource on the July 2025 stable stream", () => {
  it("offers jammy and noble (newest first, both LTS) on amd64 and arm64, and CentOS 7 and 8", () => {
    expect(current.catalogue).toEqual({
      ubuntu: {
        releases: [
          { release: "noble", title: "24.04 LTS", lts: true, eol: "2029-05-31" },
          // jammy arm64 says 2027-06-01, amd64 2027-04-21: the release shows the earliest.
          { release: "jammy", title: "22.04 LTS", lts: true, eol: "2027-04-21" },
        ],
        arches: ["amd64", "arm64"],
      },
      other: [
        { os: "centos", release: "8", title: "CentOS 8", arches: ["amd64"] },
        { os: "centos", release: "centos70", title: "CentOS 7", arches: ["amd64"] },
      ],
    });
    expect(current.warnings).toEqual([]);
    expect(current.signed).toBe(false);
  });

  it("picks the newest version of every product, whatever the naming style", () => {
    const versions = Object.fromEntries(current.images.map((i) => [i.id, i.version]));
    expect(versions).toEqual({
      "centos/8/amd64": "20211104_01",
      "centos/centos70/amd64": "20240622_01",
      "ubuntu/jammy/amd64": "20250718",
      "ubuntu/jammy/arm64": "20250812",
      "ubuntu/noble/amd64": "20250709",
      "ubuntu/noble/arm64": "20250709",
    });
    const bootloaderVersions = Object.fromEntries(current.bootloaders.map((b) => [b.product, b.version]));
    expect(bootloaderVersions["com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64"]).toBe("20231004.0");
    expect(bootloaderVersions["com.ubuntu.maas.stable:1:grub-ieee1275:open-firmware:ppc64el"]).toBe(
      "20210509.0",
    );
  });

  it("lists the kernel, initrd and squashfs of an Ubuntu image, and never a manifest", () => {
    const noble = image(current, "ubuntu/noble/amd64");
    expect(noble.title).toBe("24.04 LTS");
    expect(noble.subarches).toEqual(["ga-24.04"]);
    expect(noble.files).toEqual([
      {
        sha256: "ec523c5128d4fa5197cd52f075d90e219d7e9b4454da06a90bf25053b9510dcc",
        size: 78320319,
        path: "noble/amd64/20250709/ga-24.04/generic/boot-initrd",
        ftype: "boot-initrd",
        product: "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
        version: "20250709",
      },
      {
        sha256: "67cd9af083515de2101de032b49a64fc4b65778e5383df6ef21cf788a3f4688e",
        size: 15010184,
        path: "noble/amd64/20250709/ga-24.04/generic/boot-kernel",
        ftype: "boot-kernel",
        product: "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
        version: "20250709",
      },
      {
        sha256: "4e30804d8f2cbad61b17bf94be758518209759ac26e8e065b094f9b51eaf5fdc",
        size: 271732736,
        path: "noble/amd64/20250709/squashfs",
        ftype: "squashfs",
        product: "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
        version: "20250709",
      },
    ]);
    const allFtypes = current.images.flatMap((i) => i.files.map((f) => f.ftype));
    expect(allFtypes).not.toContain("manifest");
  });

  it("takes a CentOS base as its root-tgz, titled from release_title", () => {
    const centos7 = image(current, "centos/centos70/amd64");
    expect(centos7.title).toBe("CentOS 7");
    expect(centos7.files.map((f) => [f.ftype, f.path])).toEqual([
      ["root-tgz", "centos/centos70/amd64/20240622_01/root-tgz"],
    ]);
  });

  it("uses the newest path of jammy arm64's kernel, which two versions share under two paths", () => {
    const jammyArm = image(current, "ubuntu/jammy/arm64");
    const kernel = jammyArm.files.find((f) => f.ftype === "boot-kernel");
    expect(kernel).toMatchObject({
      sha256: "260d82490954ecfb7c2d35fe5aa065b0eee2ae1d664bf70745bb955c7909f8b6",
      path: "jammy/arm64/20250812/ga-22.04/generic/boot-kernel",
      version: "20250812",
    });
  });

  it("keeps bootloaders aside: never in the catalogue or the images", () => {
    expect(current.bootloaders.map((b) => b.bootloaderType).sort()).toEqual([
      "open-firmware",
      "pxe",
      "pxe",
      "uefi",
      "uefi",
    ]);
    expect(current.images.some((i) => i.os.startsWith("grub") || i.os === "pxelinux")).toBe(false);
    const uefi = current.bootloaders.find((b) => b.product.endsWith("grub-efi-signed:uefi:amd64"));
    expect(uefi?.files.map((f) => f.path)).toEqual([
      "bootloaders/uefi/amd64/20231004.0/grub2-signed.tar.xz",
      "bootloaders/uefi/amd64/20231004.0/shim-signed.tar.xz",
    ]);
  });

  it("reads the same stream over HTTP", async () => {
    const routes: Record<string, string> = {};
    const names = {
      index: "index.json",
      ubuntu: "ubuntu.json",
      centos: "centos.json",
      bootloaders: "bootloaders.json",
    };
    for (const [key, name] of Object.entries(names)) {
      routes[UPSTREAM_PATHS[key as keyof typeof UPSTREAM_PATHS]] = await readFile(
        join(SAMPLE_DIR, name),
        "utf8",
      );
    }
    const server = await startLoopbackServer(routes);
    try {
      const overHttp = await readSource({ url: server.url.slice(0, -1) });
      expect(overHttp.catalogue).toEqual(current.catalogue);
      expect(overHttp.images).toEqual(current.images);
      expect(overHttp.url).toBe(server.url);
    } finally {
      await server.close();
    }
  });
});

describe("readSource on the earlier copy (2025-07-28), which disagrees with the index", () => {
  it("reads it without failing and says how the two differ", () => {
    expect(earlier.warnings).toHaveLength(2);
    expect(earlier.warnings[0]).toMatch(
      /lacks products the index names: com\.ubuntu\.maas\.stable:v3:boot:22\.04:arm64:ga-22\.04$/,
    );
    expect(earlier.warnings[1]).toMatch(
      /has products the index does not name .*: com\.ubuntu\.maas\.stable:v3:boot:22\.04:amd64:hwe-22\.04$/,
    );
    expect(earlier.warnings[0]).toContain("com.ubuntu.maas:stable:v3:download.json");
  });

  it("has no jammy arm64 image, and jammy amd64 takes the unlisted hwe kernel too", () => {
    expect(earlier.images.map((i) => i.id)).not.toContain("ubuntu/jammy/arm64");
    expect(image(earlier, "ubuntu/jammy/amd64").subarches).toEqual(["ga-22.04", "hwe-22.04"]);
    // noble still offers arm64, so the arch stays in the catalogue.
    expect(earlier.catalogue.ubuntu.arches).toEqual(["amd64", "arm64"]);
  });

  it("stores the squashfs jammy's ga and hwe kernels share once", () => {
    const jammy = image(earlier, "ubuntu/jammy/amd64");
    expect(jammy.files.map((f) => f.path)).toEqual([
      "jammy/amd64/20250718/ga-22.04/generic/boot-initrd",
      "jammy/amd64/20250718/ga-22.04/generic/boot-kernel",
      "jammy/amd64/20250718/hwe-22.04/generic/boot-initrd",
      "jammy/amd64/20250718/hwe-22.04/generic/boot-kernel",
      "jammy/amd64/20250718/squashfs",
    ]);
    const squashfs = jammy.files.filter((f) => f.ftype === "squashfs");
    expect(squashfs).toHaveLength(1);
    expect(squashfs[0]?.sha256).toBe("edbd57a3d69392e6942ef4a35bc7c062cc234b9d1d48d99bf3e15401ceda0d46");
    expect(new Set(jammy.files.map((f) => f.sha256)).size).toBe(jammy.files.length);
  });
});
