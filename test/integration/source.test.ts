import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { generateSigningKey } from "../../apps/server/src/mirror/signing";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { corruptStoreFiles } from "../helpers/store";
import { waitFor, watch } from "../helpers/watch";

describe("a signed boot source", () => {
  let keys: { privateKey: string; publicKey: string };
  let other: { privateKey: string; publicKey: string };
  let signed: TestMirror;
  let region: RegionProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    [keys, other] = await Promise.all([generateSigningKey(), generateSigningKey("someone else")]);
    signed = await startMirror({
      releases: ["jammy", "noble"],
      arches: ["amd64"],
      signingKey: keys.privateKey,
    });
    const keyFile = path.join(signed.dir, "..", `key-${path.basename(signed.dir)}.asc`);
    await writeFile(keyFile, keys.publicKey);
    region = await startRegion({ env: { BOOT_SOURCE_URL: signed.url, BOOT_SOURCE_KEYRING: keyFile } });
    client = await watch(region.url, region.adminToken);
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await signed?.close();
    await removeDir(region.dataDir);
  });

  it("is verified against its key, offers its catalogue and imports the default selection", async () => {
    const state = await waitFor(
      client,
      (s) => s.images.get("ubuntu/noble/amd64")?.state === "synced",
      30_000,
      "signed import",
    );
    expect(state.source).toMatchObject({ url: signed.url, keyringSet: true, error: null });
    const { catalogue } = await client.command("catalogue:get", {});
    expect(catalogue.ubuntu.releases.map((r) => r.release)).toEqual(["noble", "jammy"]);
  });

  it("refuses the same mirror checked against another key, and keeps the old source", async () => {
    const before = (await client.command("state:get", {})).snapshot.source;
    await expect(
      client.command("source:update", { url: signed.url, keyring: other.publicKey }),
    ).rejects.toMatchObject({
      code: "source-error",
      message: expect.stringMatching(/sign|key/i),
    });
    await expect(
      client.command("source:update", { url: signed.url, keyring: "not a key at all" }),
    ).rejects.toMatchObject({
      code: "source-error",
    });
    expect((await client.command("state:get", {})).snapshot.source).toEqual(before);
  });

  it("refuses an index.sjson with one byte changed, and keeps the old source, catalogue and selection", async () => {
    const tampered = await startMirror({
      releases: ["noble"],
      arches: ["amd64"],
      signingKey: keys.privateKey,
    });
    const index = path.join(tampered.dir, "streams/v1/index.sjson");
    const text = await readFile(index, "utf8");
    const at = text.indexOf('"format"');
    await writeFile(index, text.slice(0, at) + text.slice(at).replace("index:1.0", "index:1.1"));
    const before = (await client.command("state:get", {})).snapshot;
    const catalogue = (await client.command("catalogue:get", {})).catalogue;
    await expect(
      client.command("source:update", { url: tampered.url, keyring: keys.publicKey }),
    ).rejects.toMatchObject({ code: "source-error" });
    const after = (await client.command("state:get", {})).snapshot;
    expect(after.source).toEqual(before.source);
    expect(after.selection).toEqual(before.selection);
    expect((await client.command("catalogue:get", {})).catalogue).toEqual(catalogue);
    await tampered.close();
  });

  it("keeps its key when moved without one, refuses an unsigned mirror so, and goes unsigned only when told", async () => {
    // Another mirror of the same signed stream (the same key): no keyring sent, it stays verified.
    const copy = await startMirror({ releases: ["noble"], arches: ["amd64"], signingKey: keys.privateKey });
    const unsigned = await startMirror({ releases: ["noble"], arches: ["amd64"] });
    try {
      const moved = await client.command("source:update", { url: copy.url });
      expect(moved.source).toMatchObject({ url: copy.url, keyringSet: true });
      const { entries } = await client.command("audit:list", {});
      expect(entries[0]).toMatchObject({
        action: "source:update",
        detail: `${copy.url} (signed, keyring kept)`,
      });

      // An unsigned mirror is checked against the kept key: refused, saying how to go unsigned.
      await expect(client.command("source:update", { url: unsigned.url })).rejects.toMatchObject({
        code: "source-error",
        message: expect.stringContaining("--keyring none"),
      });
      expect(client.state.source).toMatchObject({ url: copy.url, keyringSet: true });
      const told = await client.command("source:update", { url: unsigned.url, keyring: "" });
      expect(told.source).toMatchObject({ url: unsigned.url, keyringSet: false });
    } finally {
      await client.command("source:update", { url: signed.url, keyring: keys.publicKey });
      await copy.close();
      await unsigned.close();
    }
  });

  it("says what is wrong with a URL it cannot use", async () => {
    await expect(client.command("source:update", { url: "ftp://mirror/" })).rejects.toMatchObject({
      code: "invalid",
    });
    await expect(client.command("source:update", { url: "http://127.0.0.1:9/" })).rejects.toMatchObject({
      code: "source-error",
    });
  });
});

describe("a payload that does not match its sha256", () => {
  it("fails the image and never marks it synced or keeps the bad bytes", async () => {
    const mirror = await startMirror({ releases: ["noble"], arches: ["amd64"] });
    // Flip one byte of the squashfs on the mirror's disk: the stream still lists the good sha256.
    const squashfs = mirror.summary.versions.length
      ? await findFile(mirror.dir, "squashfs", mirror.summary.versions.at(-1)!)
      : "";
    const bytes = await readFile(squashfs);
    bytes[1000] = bytes[1000]! ^ 0xff;
    await writeFile(squashfs, bytes);
    const region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    const client = await watch(region.url, region.adminToken);
    const seen = new Set<string>();
    client.subscribe((_c, s) => seen.add(s.images.get("ubuntu/noble/amd64")?.state ?? ""));
    const state = await waitFor(
      client,
      (s) => s.images.get("ubuntu/noble/amd64")?.state === "failed",
      60_000,
      "failed image",
    );
    expect(state.images.get("ubuntu/noble/amd64")!.error).toMatch(/sha256/i);
    expect(seen.has("synced")).toBe(false);
    expect(await corruptStoreFiles(region.dataDir)).toEqual([]);
    await waitFor(client, (s) => !s.import.running && s.import.error !== null, 10_000, "the import's error");
    expect(client.state.import.error).toContain("ubuntu/noble/amd64");
    client.close();
    await region.stop();
    await mirror.close();
    await removeDir(region.dataDir);
  });
});

async function findFile(root: string, name: string, version: string): Promise<string> {
  const { readdir } = await import("node:fs/promises");
  const entries = await readdir(root, { recursive: true });
  const hit = entries.find((entry) => entry.endsWith(`/${name}`) && entry.includes(`/${version}/`));
  if (!hit) throw new Error(`no ${name} of ${version} under ${root}`);
  return path.join(root, hit);
}
