import { createCipheriv, createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";

const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/**
 * The bytes of a synthetic payload, 1 MiB at a time: an AES-256-CTR keystream keyed by the seed.
 * Deterministic (same seed, same bytes, same sha256 on every run and machine), incompressible like
 * real images, and far faster than hashing out a stream; nothing but one chunk is ever in memory.
 */
export function* payloadChunks(seed: string, size: number): Generator<Buffer> {
  const key = createHash("sha256").update(`bootstream-mirror\0${seed}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  for (let left = size; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? ZEROS : ZEROS.subarray(0, left));
  }
}

/** sha256 of the payload without writing it: an existing file with the right size is kept. */
export function payloadSha256(seed: string, size: number): string {
  const hash = createHash("sha256");
  for (const chunk of payloadChunks(seed, size)) hash.update(chunk);
  return hash.digest("hex");
}

/** Writes the payload through `.partial` and a rename, so a server never serves half a file. */
export async function writePayload(file: string, seed: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const partial = `${file}.partial`;
  const handle = await open(partial, "w");
  try {
    for (const chunk of payloadChunks(seed, size)) {
      hash.update(chunk);
      await handle.write(chunk);
    }
  } catch (error) {
    await handle.close();
    await rm(partial, { force: true });
    throw error;
  }
  await handle.close();
  await rename(partial, file);
  return hash.digest("hex");
}
