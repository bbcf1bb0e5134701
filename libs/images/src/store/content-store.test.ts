import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore } from "./content-store";
import { payload, sha256, tempDir } from "./test-helpers";

let root: string;

beforeEach(async () => {
  root = await tempDir();
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function putPartial(store: ContentStore, data: Buffer): Promise<string> {
  const sha = sha256(data);
  await writeFile(store.partialPath(sha), data);
  return sha;
}

describe("ContentStore", () => {
  it("creates its directories and starts empty", async () => {
    const store = await ContentStore.open(root);
    expect(existsSync(join(root, "store"))).toBe(true);
    expect(existsSync(join(root, "partial"))).toBe(true);
    expect(await store.list()).toEqual([]);
    expect(await store.freeBytes()).toBeGreaterThan(0);
  });

  it("installs a verified partial under store/<sha[0:2]>/<sha> and reports it", async () => {
    const store = await ContentStore.open(root);
    const data = payload(10_000);
    const sha = await putPartial(store, data);
    await store.writePartialMeta(sha, { url: "http://x/a", etag: '"e"', lastModified: null });

    await store.installPartial(sha, sha);

    expect(store.pathOf(sha)).toBe(join(root, "store", sha.slice(0, 2), sha));
    expect(await store.has(sha)).toBe(true);
    expect(await store.size(sha)).toBe(10_000);
    expect(await store.list()).toEqual([sha]);
    expect(await store.verifyFile(sha)).toBe(true);
    expect(await readdir(join(root, "partial"))).toEqual([]);
  });

  it("refuses to install bytes whose digest is not their name", async () => {
    const store = await ContentStore.open(root);
    const sha = await putPartial(store, payload(100));
    const other = sha256(payload(100, 2));
    await expect(store.installPartial(sha, other)).rejects.toThrow(/refusing to install/);
    expect(await store.list()).toEqual([]);
  });

  it("detects a corrupted stored file and removes files", async () => {
    const store = await ContentStore.open(root);
    const sha = await putPartial(store, payload(4096));
    await store.installPartial(sha, sha);
    await writeFile(store.pathOf(sha), payload(4096, 9));
    expect(await store.verifyFile(sha)).toBe(false);

    expect(await store.remove(sha)).toBe(true);
    expect(await store.remove(sha)).toBe(false);
    expect(await store.has(sha)).toBe(false);
    expect(await store.size(sha)).toBeNull();
    expect(await store.verifyFile(sha)).toBe(false);
  });

  it("lists only well-formed entries (the disk is the index)", async () => {
    const store = await ContentStore.open(root);
    const sha = await putPartial(store, payload(10));
    await store.installPartial(sha, sha);
    await writeFile(join(root, "store", sha.slice(0, 2), "README"), "x");
    const misplaced = sha256(payload(11));
    await mkdir(join(root, "store", "zz"), { recursive: true });
    await writeFile(join(root, "store", "zz", misplaced), "x");
    await writeFile(join(root, "store", "stray-file"), "x");
    expect(await store.list()).toEqual([sha]);
  });

  it("cleans stray temp files, orphan sidecars and partials already stored on open", async () => {
    let store = await ContentStore.open(root);
    const stored = await putPartial(store, payload(50, 3));
    await store.installPartial(stored, stored);
    await putPartial(store, payload(50, 3)); // crash between rename and cleanup would leave this
    const keep = await putPartial(store, payload(60, 4));
    await store.writePartialMeta(keep, {
      url: "http://x/b",
      etag: null,
      lastModified: "Mon, 01 Jan 2024 00:00:00 GMT",
    });
    const orphan = sha256(payload(70, 5));
    await writeFile(join(root, "partial", `${orphan}.partial.json`), "{}");
    await writeFile(join(root, "partial", `${keep}.partial.json.tmp`), "{");
    await writeFile(join(root, "store", stored.slice(0, 2), `${stored}.tmp`), "x");

    store = await ContentStore.open(root);

    expect(await store.listPartials()).toEqual([keep]);
    expect((await readdir(join(root, "partial"))).sort()).toEqual(
      [`${keep}.partial`, `${keep}.partial.json`].sort(),
    );
    expect(await readdir(join(root, "store", stored.slice(0, 2)))).toEqual([stored]);
    expect(await store.readPartialMeta(keep)).toEqual({
      url: "http://x/b",
      etag: null,
      lastModified: "Mon, 01 Jan 2024 00:00:00 GMT",
    });
  });

  it("treats a torn sidecar as no validator", async () => {
    const store = await ContentStore.open(root);
    const sha = await putPartial(store, payload(5));
    await writeFile(join(root, "partial", `${sha}.partial.json`), '{"url":');
    expect(await store.readPartialMeta(sha)).toBeNull();
  });

  it("rejects anything that is not a lowercase hex sha256 on every entry point", async () => {
    const store = await ContentStore.open(root);
    const bad = [
      "",
      "../../etc/passwd",
      "A".repeat(64),
      "a".repeat(63),
      "a".repeat(65),
      `${"a".repeat(62)}/x`,
    ];
    for (const sha of bad) {
      expect(() => store.pathOf(sha)).toThrow(TypeError);
      expect(() => store.partialPath(sha)).toThrow(TypeError);
      await expect(store.has(sha)).rejects.toThrow(TypeError);
      await expect(store.size(sha)).rejects.toThrow(TypeError);
      await expect(store.remove(sha)).rejects.toThrow(TypeError);
      await expect(store.verifyFile(sha)).rejects.toThrow(TypeError);
      await expect(store.installPartial(sha, sha)).rejects.toThrow(TypeError);
      await expect(store.withLock(sha, async () => 1)).rejects.toThrow(TypeError);
    }
  });

  it("serialises work on the same sha and not on different ones", async () => {
    const store = await ContentStore.open(root);
    const a = sha256(payload(1, 1));
    const b = sha256(payload(1, 2));
    const events: string[] = [];
    const task = (name: string, ms: number) => async () => {
      events.push(`start ${name}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`end ${name}`);
    };
    await Promise.all([
      store.withLock(a, task("a1", 20)),
      store.withLock(a, task("a2", 1)),
      store.withLock(b, task("b", 1)),
    ]);
    expect(events.indexOf("end a1")).toBeLessThan(events.indexOf("start a2"));
    expect(events.indexOf("start b")).toBeLessThan(events.indexOf("end a1"));
  });

  it("stops waiting for a lock when the signal aborts", async () => {
    const store = await ContentStore.open(root);
    const sha = sha256(payload(1));
    let release!: () => void;
    const held = store.withLock(sha, () => new Promise<void>((resolve) => (release = resolve)));
    const controller = new AbortController();
    const waiting = store.withLock(sha, async () => "ran", controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow();
    release();
    await held;
    expect(await store.withLock(sha, async () => "next")).toBe("next");
  });
});

describe("ContentStore checks and quarantine", () => {
  async function stored(store: ContentStore, data: Buffer): Promise<string> {
    const sha = await putPartial(store, data);
    await store.installPartial(sha, sha);
    return sha;
  }

  it("checkFile tells ok, corrupt and missing, reporting every byte it read", async () => {
    const store = await ContentStore.open(root);
    const data = payload(3 * 1024 * 1024 + 7);
    const sha = await stored(store, data);
    let bytes = 0;
    expect(await store.checkFile(sha, undefined, (n) => (bytes += n))).toBe("ok");
    expect(bytes).toBe(data.length);
    const bad = Buffer.from(data);
    bad[1000] = bad[1000]! ^ 1;
    await writeFile(store.pathOf(sha), bad);
    expect(await store.checkFile(sha)).toBe("corrupt");
    await store.remove(sha);
    expect(await store.checkFile(sha)).toBe("missing");
  });

  it("quarantine takes a file out of the store, remembers it across opens, and lets good bytes back in", async () => {
    const store = await ContentStore.open(root);
    const data = payload(5000);
    const sha = await stored(store, data);
    expect(await store.quarantine(sha)).toBe(true);
    expect(await store.has(sha)).toBe(false);
    expect(await store.list()).toEqual([]);
    expect(await store.quarantine(sha)).toBe(false);
    const again = await ContentStore.open(root);
    expect(await again.listQuarantined()).toEqual([sha]);
    // A fresh download installs beside the quarantined copy; discarding it leaves the good one.
    await stored(again, data);
    await again.discardQuarantined(sha);
    expect(await again.listQuarantined()).toEqual([]);
    expect(await again.checkFile(sha)).toBe("ok");
  });
});
