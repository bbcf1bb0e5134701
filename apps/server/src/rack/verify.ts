import type { ContentStore } from "@bootstream/images";
import type { Logger } from "../log";

export type StoreCheck = { files: number; bytes: number; corrupt: string[] };

/**
 * Re-hashes every file of the rack's store, one at a time and streaming. A file whose bytes no
 * longer match its name is removed, so the sync that follows pulls it again from the region (whose
 * own verify keeps corrupt files out of its manifest). A file that cannot be read counts as corrupt.
 */
export async function verifyStore(
  store: ContentStore,
  signal: AbortSignal,
  log: Logger,
): Promise<StoreCheck> {
  const started = Date.now();
  const result: StoreCheck = { files: 0, bytes: 0, corrupt: [] };
  log.info("verify started");
  for (const sha of await store.list()) {
    signal.throwIfAborted();
    let check: Awaited<ReturnType<ContentStore["checkFile"]>>;
    try {
      check = await store.checkFile(sha, signal, (bytes) => (result.bytes += bytes));
    } catch (error) {
      if (signal.aborted) throw error;
      log.warn({ sha256: sha, err: error }, "stored file cannot be read: treated as corrupt");
      check = "corrupt";
    }
    if (check === "missing") continue;
    result.files++;
    if (check === "ok") continue;
    result.corrupt.push(sha);
    await store.remove(sha);
    log.warn({ sha256: sha }, "stored file corrupt: removed, pulling it again");
  }
  log.info({ ...result, durationMs: Date.now() - started }, "store verified");
  return result;
}
