import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import type { ContentStore } from "@bootstream/images";

/**
 * A `file://` source (a mirror on local disk or NFS) has no HTTP to resume over: copy the file
 * through the same sha256 check into the store. A copy is cheap to redo, so no resume.
 */
export async function copyLocalFile(
  store: ContentStore,
  url: URL,
  sha256: string,
  size: number,
  signal: AbortSignal,
  onProgress: (delta: number) => void,
): Promise<void> {
  if (await store.has(sha256)) return;
  const source = fileURLToPath(url);
  const actual = (await stat(source)).size;
  if (actual !== size) throw new Error(`${source} is ${actual} bytes, the stream says ${size}`);
  await store.withLock(
    sha256,
    async () => {
      if (await store.has(sha256)) return;
      await store.discardPartial(sha256);
      const hash = createHash("sha256");
      let copied = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          copied += chunk.length;
          onProgress(chunk.length);
          callback(null, chunk);
        },
      });
      try {
        await pipeline(
          createReadStream(source),
          meter,
          createWriteStream(store.partialPath(sha256), { mode: store.fileMode }),
          {
            signal,
          },
        );
      } catch (error) {
        onProgress(-copied);
        throw error;
      }
      const digest = hash.digest("hex");
      if (digest !== sha256) {
        await store.discardPartial(sha256);
        onProgress(-copied);
        throw new Error(`${source} has sha256 ${digest}, the stream says ${sha256}`);
      }
      await store.installPartial(sha256, digest);
    },
    signal,
  );
}
