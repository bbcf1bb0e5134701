// copyLocalFile against a real content store and real files in a temp dir.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore } from "@bootstream/images";
import { copyLocalFile } from "./local-copy";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("copyLocalFile (file:// sources)", () => {
  let dir: string;
  let store: ContentStore;
  let source: string;
  const bytes = Buffer.from("a payload on a local mirror\n".repeat(5000));
  const sha = sha256(bytes);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-local-copy-"));
    store = await ContentStore.open(path.join(dir, "data"));
    source = path.join(dir, "payload");
    await writeFile(source, bytes);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const partials = () => readdir(path.join(dir, "data", "partial"));

  it("copies a file that matches into the store, counting every byte once", async () => {
    let progress = 0;
    await copyLocalFile(
      store,
      pathToFileURL(source),
      sha,
      bytes.length,
      new AbortController().signal,
      (d) => {
        progress += d;
      },
    );
    expect(await store.has(sha)).toBe(true);
    expect(await readFile(store.pathOf(sha))).toEqual(bytes);
    expect(progress).toBe(bytes.length);
    expect(await partials()).toEqual([]);
  });

  it("does nothing for a sha256 already in the store", async () => {
    await copyLocalFile(
      store,
      pathToFileURL(source),
      sha,
      bytes.length,
      new AbortController().signal,
      () => {},
    );
    await rm(source);
    let progress = 0;
    // The source is gone: only the store answers.
    await copyLocalFile(
      store,
      pathToFileURL(source),
      sha,
      bytes.length,
      new AbortController().signal,
      (d) => {
        progress += d;
      },
    );
    expect(progress).toBe(0);
  });

  it("refuses a file of the wrong size before reading it", async () => {
    let progress = 0;
    await expect(
      copyLocalFile(
        store,
        pathToFileURL(source),
        sha,
        bytes.length + 1,
        new AbortController().signal,
        (d) => {
          progress += d;
        },
      ),
    ).rejects.toThrow(`${source} is ${bytes.length} bytes, the stream says ${bytes.length + 1}`);
    expect(progress).toBe(0);
    expect(await store.has(sha)).toBe(false);
  });

  it("refuses a file whose sha256 differs, keeps nothing and gives its progress back", async () => {
    const wrong = sha256(Buffer.from("something else"));
    let progress = 0;
    await expect(
      copyLocalFile(store, pathToFileURL(source), wrong, bytes.length, new AbortController().signal, (d) => {
        progress += d;
      }),
    ).rejects.toThrow(`${source} has sha256 ${sha}, the stream says ${wrong}`);
    expect(progress).toBe(0);
    expect(await store.has(wrong)).toBe(false);
    expect(await store.has(sha)).toBe(false);
    expect(await partials()).toEqual([]);
  });

  it("stops when aborted, gives its progress back and installs nothing", async () => {
    const controller = new AbortController();
    let progress = 0;
    const copy = copyLocalFile(store, pathToFileURL(source), sha, bytes.length, controller.signal, (d) => {
      progress += d;
      if (progress > 0) controller.abort(new Error("stopped"));
    });
    await expect(copy).rejects.toThrow();
    expect(progress).toBe(0);
    expect(await store.has(sha)).toBe(false);
  });

  it("fails on a missing source file", async () => {
    await rm(source);
    await expect(
      copyLocalFile(store, pathToFileURL(source), sha, bytes.length, new AbortController().signal, () => {}),
    ).rejects.toThrow(/ENOENT/);
  });
});
