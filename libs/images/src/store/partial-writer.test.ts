import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PartialWriter, STAGING_BYTES, dropIdleStaging } from "./partial-writer";
import { payload, sha256, tempDir } from "./test-helpers";

const KiB = 1024;

let dir: string;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Run = { writer: PartialWriter; written: number; received: number; digest: string };

/**
 * Streams `data` into a PartialWriter at `path` in chunks of the given (odd) sizes, as a socket would,
 * resuming after the `offset` bytes already in the file (hashed first, as the downloader does).
 */
async function write(
  path: string,
  data: Buffer,
  offset: number,
  chunkSizes: number[],
  options: { directIo?: boolean } = {},
): Promise<Run> {
  const hash = createHash("sha256").update(data.subarray(0, offset));
  let written = 0;
  let received = 0;
  const writer = new PartialWriter({
    path,
    offset,
    limit: data.length,
    hash,
    highWaterMark: 64 * KiB,
    syncEveryBytes: 256 * KiB,
    onWritten: (n) => (written += n),
    onReceived: (n) => (received += n),
    onOverflow: () => new Error("overflow"),
    ...options,
  });
  let at = offset;
  let i = 0;
  while (at < data.length) {
    const size = chunkSizes[i++ % chunkSizes.length] as number;
    const chunk = Buffer.from(data.subarray(at, Math.min(data.length, at + size)));
    at += chunk.length;
    if (!writer.write(chunk)) await new Promise((resolve) => writer.once("drain", resolve));
  }
  writer.end();
  await finished(writer);
  return { writer, written, received, digest: hash.digest("hex") };
}

describe("PartialWriter", () => {
  // Two staging buffers and a bit, in chunk sizes that are never block-aligned.
  const data = payload(2 * STAGING_BYTES + 12_345, 7);
  const odd = [65_536, 1_000, 37_000, 4_095, 130_001];

  it("writes with O_DIRECT on the store's filesystem: the file, hash and counts are the bytes sent", async () => {
    const path = join(dir, "a.partial");
    const run = await write(path, data, 0, odd);

    expect(run.writer.directIo).toBe(true);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(run.digest).toBe(sha256(data));
    expect(run.writer.position).toBe(data.length);
    expect(run.written).toBe(data.length);
    expect(run.received).toBe(data.length);
    expect(run.writer.hashTainted).toBe(false);
  });

  it("resumes at an offset that is not block-aligned: the last block is staged again from the file", async () => {
    const path = join(dir, "b.partial");
    const offset = 3 * 4096 + 1_234;
    // A torn earlier write left junk past the verified bytes: it must be cut, not kept.
    await writeFile(path, Buffer.concat([data.subarray(0, offset), Buffer.alloc(10_000, 0xee)]));
    const run = await write(path, data, offset, odd);

    expect(run.writer.directIo).toBe(true);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(run.digest).toBe(sha256(data));
    expect(run.written).toBe(data.length - offset);
    expect(run.writer.position).toBe(data.length);
  });

  it("writes the same bytes buffered when asked", async () => {
    const path = join(dir, "c.partial");
    const run = await write(path, data, 5_000, odd, { directIo: false });

    expect(run.writer.directIo).toBe(false);
    // The first 5,000 bytes were "already there" only in the hash: the file holds what was written.
    expect((await readFile(path)).subarray(5_000).equals(data.subarray(5_000))).toBe(true);
    expect(run.digest).toBe(sha256(data));
    expect(run.written).toBe(data.length - 5_000);
  });

  it("puts a trickle's bytes in the file (and the progress) without waiting for a full staging buffer", async () => {
    const path = join(dir, "e.partial");
    let written = 0;
    const writer = new PartialWriter({
      path,
      offset: 0,
      limit: data.length,
      hash: createHash("sha256"),
      highWaterMark: 64 * KiB,
      syncEveryBytes: 256 * KiB,
      onWritten: (n) => (written += n),
      onOverflow: () => new Error("overflow"),
    });
    writer.write(Buffer.from(data.subarray(0, 10_000)));
    // Whole blocks go down on the flush timer; the tail of a block waits for more bytes or the end.
    await expect.poll(() => written, { timeout: 5_000 }).toBe(8_192);
    writer.end();
    await finished(writer);
    expect(written).toBe(10_000);
    expect((await readFile(path)).equals(data.subarray(0, 10_000))).toBe(true);
  });
});

describe("staging pool", () => {
  /** A writer that has opened its file and staged one byte, with the memory it stages in. */
  async function openWriter(path: string): Promise<{ memory: ArrayBufferLike; finish(): Promise<void> }> {
    const writer = new PartialWriter({
      path,
      offset: 0,
      limit: 2,
      hash: createHash("sha256"),
      highWaterMark: 64 * KiB,
      syncEveryBytes: 256 * KiB,
      onWritten: () => {},
      onReceived: () => {},
      onOverflow: () => new Error("overflow"),
    });
    await new Promise<void>((resolve, reject) =>
      writer.write(Buffer.from("a"), (e) => (e ? reject(e) : resolve())),
    );
    const staged = writer.reserve(1);
    if (staged === null) throw new Error("reserve() refused an idle writer");
    staged[0] = 0x62;
    await new Promise<void>((resolve, reject) => {
      if (writer.commit(staged.subarray(0, 1), (e) => (e ? reject(e) : resolve()))) resolve();
    });
    return {
      memory: staged.buffer,
      async finish() {
        writer.end();
        await finished(writer);
        expect(await readFile(path, "utf8")).toBe("ab");
      },
    };
  }
  async function stagingMemory(path: string): Promise<ArrayBufferLike> {
    const writer = await openWriter(path);
    await writer.finish();
    return writer.memory;
  }

  it("hands a closed writer's staging to the next, and lets it go after dropIdleStaging()", async () => {
    const first = await stagingMemory(join(dir, "a"));
    expect(await stagingMemory(join(dir, "b"))).toBe(first);
    dropIdleStaging();
    expect(await stagingMemory(join(dir, "c"))).not.toBe(first);
  });

  it("keeps the free buffers while a writer holds one (its slab stays alive anyway)", async () => {
    const holding = await openWriter(join(dir, "a"));
    dropIdleStaging();
    // The next writer takes another buffer of the same slab, not a new slab beside it.
    const beside = await openWriter(join(dir, "b"));
    expect(beside.memory).toBe(holding.memory);
    await beside.finish();
    await holding.finish();
  });
});
