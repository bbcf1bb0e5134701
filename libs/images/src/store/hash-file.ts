import type { Hash } from "node:crypto";
import { createReadStream } from "node:fs";

// Large reads: re-hashing a multi-GiB partial or stored file should be disk- or CPU-bound, not syscall-bound.
const READ_CHUNK = 1 << 20;

/** Feeds the whole file into `hash`; resolves with the number of bytes read. */
export async function hashFile(
  path: string,
  hash: Hash,
  signal?: AbortSignal,
  onChunk?: (bytes: number) => void,
): Promise<number> {
  let bytes = 0;
  const input = createReadStream(path, { highWaterMark: READ_CHUNK, signal });
  for await (const chunk of input as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    onChunk?.(chunk.length);
  }
  return bytes;
}
