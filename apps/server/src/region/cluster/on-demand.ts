import type { ContentStore } from "@bootstream/images";
import type { Logger } from "../../log";

/** How long a rack's request for a file this node lacks waits for it to come from a peer. */
export const ON_DEMAND_WAIT_MS = 10_000;

export type OnDemandOutcome = "stored" | "fetching" | "unknown";
type WantedFile = { sha256: string; size: number };

/**
 * A rack behind a balancer asks any node for any file of its manifest, and this node's peer sync
 * may not have fetched it yet. Rather than a 404 (a failed sync), the node fetches the file from a
 * peer holding it verified — through the peer sync's downloader, checked like every other — and
 * serves it once stored; a rack never gets a byte this node has not verified. Only files the
 * images need (`image_file`) are fetched, one fetch per file whoever asks; a request waits at most
 * ON_DEMAND_WAIT_MS, then hears 503 with Retry-After (the rack's downloader retries) while the
 * fetch goes on.
 */
export class OnDemandFiles {
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly options: {
      /** The file's size when an image needs it (`image_file`), else null: nothing else is fetched. */
      sizeOf: (sha256: string) => Promise<number | null>;
      store: ContentStore;
      /** Fetches a file from a peer holding it verified; false when none does or the fetch failed. */
      fetch: (file: WantedFile, signal: AbortSignal) => Promise<boolean>;
      log: Logger;
      waitMs?: number;
    },
  ) {}

  async get(sha256: string): Promise<OnDemandOutcome> {
    const { store } = this.options;
    if (this.abort.signal.aborted) return "unknown";
    let run = this.running.get(sha256);
    if (!run) {
      const size = await this.options.sizeOf(sha256);
      if (size === null) return "unknown";
      if (await store.has(sha256)) return "stored";
      run = (async () => {
        try {
          if (await this.options.fetch({ sha256, size }, this.abort.signal))
            this.options.log.info({ sha256 }, "fetched a file a rack asked for from a peer");
        } catch (error) {
          if (!this.abort.signal.aborted)
            this.options.log.warn({ err: error, sha256 }, "could not fetch a file a rack asked for");
        } finally {
          this.running.delete(sha256);
        }
      })();
      this.running.set(sha256, run);
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      run.then(() => true),
      new Promise<false>(
        (resolve) => (timer = setTimeout(() => resolve(false), this.options.waitMs ?? ON_DEMAND_WAIT_MS)),
      ),
    ]);
    clearTimeout(timer);
    if (!waited) return "fetching";
    return (await store.has(sha256)) ? "stored" : "unknown";
  }

  /** Stops the fetches under way (their `.partial` files stay for the peer sync). */
  async close(): Promise<void> {
    this.abort.abort(new Error("the region is stopping"));
    await Promise.allSettled([...this.running.values()]);
  }
}
