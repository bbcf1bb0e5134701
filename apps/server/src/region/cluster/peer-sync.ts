import {
  downloadFile,
  isAbortError,
  runPool,
  unreferencedFiles,
  type ContentStore,
} from "@bootstream/images";
import { Counter } from "prom-client";
import { request, type Dispatcher } from "undici";
import type { Logger } from "../../log";
import type { Database } from "../db/database";
import type { Metrics } from "../metrics";
import type { Peer, PeerDirectory } from "./peers";

export type PeerSyncOptions = {
  db: Database;
  store: ContentStore;
  directory: PeerDirectory;
  dispatcher: Dispatcher;
  concurrency: number;
  /** How often a follower looks for files it lacks (also right after each pass that fetched something). */
  intervalMs: number;
  metrics: Metrics;
  log: Logger;
};

type WantedFile = { sha256: string; size: number };

const NEEDED_SQL = `SELECT DISTINCT sha256, size FROM image_file`;
/** A HEAD to the leader that does not answer in time keeps the file (asked again next pass). */
const LEADER_HEAD_TIMEOUT_MS = 2_000;

/**
 * Region-to-region sync, as MAAS 3.5+ does: every node keeps its own verified store.
 *
 * - A **follower** fetches every file an image needs (held and target versions: the `image_file`
 *   rows the leader committed) from a peer that holds the verified file, the leader first. A file
 *   the leader is still importing is followed as it grows (`/files/:sha?partial`), so a leader
 *   killed mid-file leaves the next one most of its bytes. The rack path's downloader does the
 *   work: `.partial` files, Range (+ If-Range for the same URL), sha256 and size while streaming.
 * - A **leader** asks its peers before upstream (`fetchVerified`): a new leader uses what the others
 *   hold first.
 * - A follower's store **follows the leader's**: a file no `image_file` row names any more (a version
 *   switched away, an image deselected) is removed once the leader has removed it too. The leader
 *   keeps such a file while racks may still pull it (its garbage collection pins the files of
 *   manifests racks have not caught up with), so the follower keeps it exactly as long. `.partial`
 *   files nothing names are dropped at once, as the leader does.
 *
 * `bootstream_peer_sync_bytes` counts the bytes this node received from peers.
 */
export class PeerSync {
  private readonly received: Counter;
  private loop: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  /** Starts and stops run one after the other. */
  private transition: Promise<void> = Promise.resolve();
  private missingLogged = new Set<string>();

  constructor(private readonly options: PeerSyncOptions) {
    this.received = new Counter({
      name: "bootstream_peer_sync_bytes",
      help: "Bytes of image files this region node received from its peer region nodes",
      registers: [options.metrics.registry],
    });
  }

  /** Following: keep the store in step with the leader's images. Idempotent. */
  start(): Promise<void> {
    return this.serially(async () => {
      if (this.loop) return;
      const abort = new AbortController();
      this.abort = abort;
      this.loop = this.run(abort.signal).catch((error: unknown) => {
        if (!abort.signal.aborted) this.options.log.error({ err: error }, "peer sync stopped");
      });
    });
  }

  /** Leading (or shutting down): stop fetching; `.partial` files stay for the importer. Idempotent. */
  stop(): Promise<void> {
    return this.serially(async () => {
      this.abort?.abort(new Error("peer sync stopped"));
      this.wake?.();
      await this.loop;
      this.loop = null;
      this.abort = null;
    });
  }

  /** Ask for a pass now (an image changed). */
  kick(): void {
    this.wake?.();
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.transition.then(step);
    this.transition = next.catch(() => undefined);
    return next;
  }

  private async run(signal: AbortSignal): Promise<void> {
    // Said once per spell of failures (a database outage fails every pass), and when it ends.
    let failing = false;
    while (!signal.aborted) {
      let fetched = false;
      try {
        fetched = await this.pass(signal);
        if (failing) this.options.log.info("peer sync passes work again");
        failing = false;
      } catch (error) {
        if (signal.aborted) return;
        if (!failing) this.options.log.warn({ err: error }, "peer sync pass failed; trying again every pass");
        else this.options.log.debug({ err: error }, "peer sync pass failed again");
        failing = true;
      }
      if (!fetched) await this.sleep(this.options.intervalMs, signal);
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
      this.wake = done;
    });
  }

  /** One pass over what is missing; true when it fetched something (look again at once). */
  private async pass(signal: AbortSignal): Promise<boolean> {
    const { store, db } = this.options;
    const rows = (await db.source.query(NEEDED_SQL)) as { sha256: string; size: string | number }[];
    const missing: WantedFile[] = [];
    for (const row of rows)
      if (!(await store.has(row.sha256))) missing.push({ sha256: row.sha256, size: Number(row.size) });
    const peers = await this.options.directory.peers();
    const leader = peers.find((peer) => peer.leader) ?? null;
    await this.collectGarbage(new Set(rows.map((row) => row.sha256)), leader, signal);
    if (missing.length === 0) return false;
    // Biggest first, as the leader's plan downloads them: the files it is fetching now are followed first.
    missing.sort((a, b) => b.size - a.size || a.sha256.localeCompare(b.sha256));
    let fetched = 0;
    await runPool(
      missing,
      this.options.concurrency,
      async (file) => {
        const holder = await this.options.directory.locate(file.sha256, signal);
        // Nobody holds it verified yet: follow the leader's download of it, if there is one.
        const url = holder
          ? this.options.directory.fileUrl(holder, file.sha256)
          : leader
            ? `${this.options.directory.fileUrl(leader, file.sha256)}?partial=${file.size}`
            : null;
        if (!url) return;
        if (await this.fetch(file, url, signal, () => undefined)) fetched++;
      },
      signal,
    );
    return fetched > 0;
  }

  /**
   * Removes what no image needs: stored files once the leader no longer holds them either (it keeps
   * what racks may still pull), `.partial` files at once. Read after the `image_file` rows, so a file
   * planned meanwhile is still named by them; this node's own fetches run in the same loop, never
   * beside it. Without a known leader, stored files stay.
   */
  private async collectGarbage(needed: Set<string>, leader: Peer | null, signal: AbortSignal): Promise<void> {
    const { store, log } = this.options;
    const partials = unreferencedFiles(await store.listPartials(), needed);
    for (const sha of partials) await store.discardPartial(sha);
    const candidates = leader ? unreferencedFiles(await store.list(), needed) : [];
    let removed = 0;
    for (const sha of candidates) {
      signal.throwIfAborted();
      if ((await this.leaderHas(leader!, sha, signal)) !== false) continue;
      if (await store.remove(sha)) removed++;
    }
    if (removed || partials.length)
      log.info(
        { files: removed, partials: partials.length },
        "removed files no image needs (the leader removed them too)",
      );
  }

  /** true / false as the leader's `/files` answers a HEAD (200 / 404); null when it does not say. */
  private async leaderHas(leader: Peer, sha256: string, signal: AbortSignal): Promise<boolean | null> {
    try {
      const response = await request(this.options.directory.fileUrl(leader, sha256), {
        method: "HEAD",
        headers: this.options.directory.headers,
        dispatcher: this.options.dispatcher,
        signal: AbortSignal.any([signal, AbortSignal.timeout(LEADER_HEAD_TIMEOUT_MS)]),
      });
      await response.body.dump();
      return response.statusCode === 200 ? true : response.statusCode === 404 ? false : null;
    } catch (error) {
      signal.throwIfAborted();
      this.options.log.debug({ err: error, peer: leader.url }, "the leader did not answer a HEAD");
      return null;
    }
  }

  /**
   * Fetches one file from `url` into the store; false when it failed (logged once per file until it
   * works). Reports progress as the downloader does, and takes it back if the fetch fails, so a caller
   * that falls back to another source counts the `.partial` once.
   */
  private async fetch(
    file: WantedFile,
    url: string,
    signal: AbortSignal,
    onProgress: (delta: number) => void,
  ): Promise<boolean> {
    const { store, log } = this.options;
    const before = await store.partialBytes(file.sha256);
    let reported = 0;
    try {
      const result = await downloadFile({
        store,
        url,
        sha256: file.sha256,
        size: file.size,
        headers: this.options.directory.headers,
        signal,
        dispatcher: this.options.dispatcher,
        onProgress: (delta) => {
          reported += delta;
          onProgress(delta);
        },
      });
      this.received.inc(result.bytesFetched);
      this.missingLogged.delete(file.sha256);
      if (result.bytesFetched > 0)
        log.info(
          { sha256: file.sha256, size: file.size, from: url, bytes: result.bytesFetched },
          "file synced from a peer",
        );
      return true;
    } catch (error) {
      const after = await store.partialBytes(file.sha256).catch(() => before);
      if (after > before) this.received.inc(after - before);
      if (reported !== 0) onProgress(-reported);
      if (isAbortError(error) || signal.aborted) throw error;
      if (!this.missingLogged.has(file.sha256)) {
        this.missingLogged.add(file.sha256);
        log.warn(
          { sha256: file.sha256, from: url, err: (error as Error).message },
          "could not sync a file from a peer yet",
        );
      }
      return false;
    }
  }

  /**
   * The leader, before upstream: fetch the file from a peer holding it verified. False when no peer
   * holds it or the fetch failed (the caller downloads from upstream, resuming what came).
   */
  async fetchVerified(
    file: WantedFile,
    signal: AbortSignal,
    onProgress: (delta: number) => void,
  ): Promise<boolean> {
    if (await this.options.store.has(file.sha256)) return false;
    const holder = await this.options.directory.locate(file.sha256, signal);
    if (!holder) return false;
    return this.fetch(file, this.options.directory.fileUrl(holder, file.sha256), signal, onProgress);
  }
}
