import {
  downloadFile,
  isAbortError,
  LARGE_STAGING_BYTES,
  runPool,
  type BandwidthLimiter,
  type ContentStore,
} from "@bootstream/images";
import type { Manifest, RackProgress } from "@bootstream/protocol";
import type { Dispatcher } from "undici";
import type { Logger } from "../log";
import { sameManifest, wantedFiles } from "./manifest";
import { publishSnapshot, removeStaleSnapshots, type PublishedSet } from "./publish";

export type SyncDeps = {
  store: ContentStore;
  dataDir: string;
  /** URL of a file in the region's store. */
  fileUrl: (sha256: string) => string;
  secret: string;
  dispatcher: Dispatcher;
  concurrency: number;
  /** --bandwidth-limit: one token bucket shared by all of the sync's downloads. */
  bandwidth?: BandwidthLimiter;
  signal: AbortSignal;
  log: Logger;
  /** Called on every change of the download progress; the caller throttles what it sends on. */
  onProgress: (progress: RackProgress) => void;
};

export type SyncOutcome = {
  /**
   * published: a new snapshot is current; unchanged: the current one already matched the manifest;
   * failed: some file could not be fetched, the old snapshot stays; aborted: shutdown interrupted it.
   */
  result: "published" | "unchanged" | "failed" | "aborted";
  /** The published set after this sync (the old one unless result is "published"). */
  published: PublishedSet | null;
  downloaded: number;
  bytesFetched: number;
  /** Files this sync needed that the store lacked. */
  missing: number;
  removedFiles: number;
  /** Why it failed, one line; null unless result is "failed". */
  error: string | null;
};

/**
 * One sync: fetch what the store lacks, publish the manifest as a snapshot, then delete what neither
 * the manifest nor the published set still needs. A failed file publishes nothing: machines keep
 * booting from the previous set, and the next sync resumes the download from its `.partial`.
 */
export async function runSync(
  deps: SyncDeps,
  manifest: Manifest,
  published: PublishedSet | null,
): Promise<SyncOutcome> {
  const { store, log } = deps;
  const wanted = wantedFiles(manifest);
  const missing: { sha256: string; size: number }[] = [];
  for (const [sha256, size] of wanted) if (!(await store.has(sha256))) missing.push({ sha256, size });

  const progress: RackProgress = { bytesDone: 0, bytesTotal: missing.reduce((sum, f) => sum + f.size, 0) };
  deps.onProgress({ ...progress });
  const outcome: SyncOutcome = {
    result: "unchanged",
    published,
    downloaded: 0,
    bytesFetched: 0,
    missing: missing.length,
    removedFiles: 0,
    error: null,
  };

  const results = await runPool(
    missing,
    deps.concurrency,
    async (file) => {
      const result = await downloadFile({
        store,
        url: deps.fileUrl(file.sha256),
        sha256: file.sha256,
        size: file.size,
        headers: { authorization: `Bearer ${deps.secret}` },
        signal: deps.signal,
        dispatcher: deps.dispatcher,
        // A rack's budget is CPU per GB synced (1.5 s): 2 MiB staging (socket reads land in it through
        // downloadFile's own HTTP/1.1 client when the region is plain http) is 1.5 MiB more resident
        // per download than the region's default, for a quarter of its direct writes. (The pool maps
        // staging 8 buffers at a time: 16 MiB of address space, resident only as used.)
        stagingBytes: LARGE_STAGING_BYTES,
        ...(deps.bandwidth ? { bandwidth: deps.bandwidth } : {}),
        onProgress: (delta) => {
          progress.bytesDone = Math.max(0, progress.bytesDone + delta);
          deps.onProgress({ ...progress });
        },
      });
      log.info(
        {
          sha256: file.sha256,
          size: file.size,
          resumedFrom: result.resumedFrom,
          bytesFetched: result.bytesFetched,
        },
        "file downloaded",
      );
      return result;
    },
    deps.signal,
  );

  const failures: { sha256: string; error: unknown }[] = [];
  results.forEach((settled, i) => {
    if (settled.status === "fulfilled") {
      outcome.downloaded++;
      outcome.bytesFetched += settled.value.bytesFetched;
    } else {
      failures.push({ sha256: (missing[i] as { sha256: string }).sha256, error: settled.reason });
    }
  });
  if (deps.signal.aborted) return { ...outcome, result: "aborted" };
  if (failures.length > 0) {
    for (const failure of failures) {
      log.warn({ sha256: failure.sha256, err: describe(failure.error) }, "file download failed");
    }
    const first = failures[0] as { error: unknown };
    outcome.result = "failed";
    outcome.error = truncate(
      `${failures.length} of ${missing.length} file(s) could not be downloaded; kept the published set of ` +
        `generation ${published?.manifest?.generation ?? 0}: ${describe(first.error)}`,
    );
  } else if (
    published === null ||
    !published.complete ||
    published.manifest === null ||
    !sameManifest(published.manifest, manifest)
  ) {
    outcome.published = await publishSnapshot(deps.dataDir, manifest, (sha) => store.pathOf(sha));
    outcome.result = "published";
    log.info({ generation: manifest.generation, snapshot: outcome.published.snapshot }, "published snapshot");
  }

  // Keep what the manifest wants (a failed sync resumes it) and what the published set links to.
  // After a successful publish the two are the same set.
  const keep = new Set<string>([...wanted.keys(), ...(outcome.published?.inventory ?? [])]);
  // Only a publish retires snapshots: the new set and the one before it stay (a machine may still be
  // reading from it); an unchanged or failed sync leaves them all alone.
  if (outcome.published && outcome.published !== published) {
    await removeStaleSnapshots(deps.dataDir, outcome.published.snapshot, published?.snapshot);
  }
  outcome.removedFiles = await removeUnwanted(store, keep, new Set(wanted.keys()));
  return outcome;
}

/** Deletes stored files not in `keep` and `.partial`s of files the manifest no longer names. */
async function removeUnwanted(store: ContentStore, keep: Set<string>, wanted: Set<string>): Promise<number> {
  let removed = 0;
  for (const sha of await store.list()) {
    if (!keep.has(sha) && (await store.remove(sha))) removed++;
  }
  for (const sha of await store.listPartials()) if (!wanted.has(sha)) await store.discardPartial(sha);
  return removed;
}

function describe(error: unknown): string {
  if (isAbortError(error)) return "aborted";
  return error instanceof Error ? error.message : String(error);
}

function truncate(text: string): string {
  return text.length > 1000 ? text.slice(0, 997) + "..." : text;
}
