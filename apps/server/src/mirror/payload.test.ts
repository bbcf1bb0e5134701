import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { payloadChunks, payloadSha256, writePayload } from "./payload";

describe("synthetic payloads", () => {
  it("are a pure function of seed and size, streamed in bounded chunks", () => {
    const a = Buffer.concat([...payloadChunks("noble/amd64/1/squashfs", 3 * 1024 * 1024 + 5)]);
    const b = Buffer.concat([...payloadChunks("noble/amd64/1/squashfs", 3 * 1024 * 1024 + 5)]);
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBe(3 * 1024 * 1024 + 5);
    expect([...payloadChunks("x", 3 * 1024 * 1024)].every((chunk) => chunk.length <= 1024 * 1024)).toBe(true);
    expect(payloadSha256("noble/amd64/2/squashfs", 4096)).not.toBe(
      payloadSha256("noble/amd64/1/squashfs", 4096),
    );
    expect(payloadSha256("empty", 0)).toBe(createHash("sha256").digest("hex"));
  });

  it("are written with the sha256 payloadSha256 predicts, and no .partial left behind", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bootstream-payload-"));
    try {
      const file = join(dir, "boot-kernel");
      const sha = await writePayload(file, "seed", 100_000);
      expect(sha).toBe(payloadSha256("seed", 100_000));
      expect(
        createHash("sha256")
          .update(await readFile(file))
          .digest("hex"),
      ).toBe(sha);
      expect(await readdir(dir)).toEqual(["boot-kernel"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
