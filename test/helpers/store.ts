import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readdir } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

/** Every file under `<dataDir>/store`, as { sha256 name → path }. */
export async function storeFiles(dataDir: string): Promise<Map<string, string>> {
  const root = path.join(dataDir, "store");
  const files = new Map<string, string>();
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(root, prefix))) files.set(name, path.join(root, prefix, name));
  }
  return files;
}

/** Asserts-by-returning: names of store files whose bytes do not hash to their name. */
export async function corruptStoreFiles(dataDir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const [name, file] of await storeFiles(dataDir)) if ((await sha256File(file)) !== name) bad.push(name);
  return bad;
}

/** Flips one byte in the middle of a file, in place (what a bad disk or a stray write does). */
export async function flipByte(file: string): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const { size } = await handle.stat();
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}
