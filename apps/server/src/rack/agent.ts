import { access, mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  BandwidthLimiter,
  ContentStore,
  createDownloadAgent,
  formatBandwidth,
  isAbortError,
} from "@bootstream/images";
import type { Manifest, RackProgress, RackReport } from "@bootstream/protocol";
import { Cron } from "croner";
import type { Dispatcher } from "undici";
import type { Logger } from "../log";
import { releaseAfterRun } from "../memory";
import { DEFAULT_VERIFY_SCHEDULE, type RackConfig } from "./config";
import { RegionConnection } from "./connection";
import { parseManifest, sameManifest } from "./manifest";
import { readPublished, removeStaleSnapshots, type PublishedSet } from "./publish";
import { runSync } from "./sync";
import { verifyStore } from "./verify";
import { Throttle } from "./throttle";

export type SyncTrigger = "start" | "manifest" | "sync:now" | "reconnect" | "schedule" | "verify";

export type RackAgentOptions = {
  /** Wait before retrying after the region refused or closed the connection (default 30 s). */
  slowRetryMs?: number;
  /** Least time between two reports (default 500 ms: at most 2 a second). */
  reportIntervalMs?: number;
  reportTimeoutMs?: number;
};

/**
 * A rack controller agent: holds the region's manifest, syncs it into the local store and publishes
 * it, and tells the region what it holds. Syncs never overlap: a request during a sync is remembered
 * and served by one more sync when the current one ends, with the newest manifest.
 */
export class RackAgent {
  private manifest: Manifest | null = null;
  private published: PublishedSet | null;
  private syncing = false;
  private progress: RackProgress | null = null;
  private lastSync: string | null;
  /** Why the last sync failed; cleared by the next one that succeeds. */
  private syncError: string | null = null;
  /** Why the region's latest manifest was refused; cleared by the next valid one. */
  private manifestError: string | null = null;
  private running: Promise<void> | null = null;
  private again: SyncTrigger | null = null;
  private closing: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private readonly connection: RegionConnection;
  private readonly cron: Cron;
  private readonly verifyCron: Cron;
  /** The verify schedule fired: the next sync re-hashes the store first. */
  private verifyWanted = false;
  private readonly reports: Throttle;
  /** --bandwidth-limit: shared by every download of every sync. */
  private readonly bandwidth: BandwidthLimiter;

  private constructor(
    private readonly config: RackConfig,
    private readonly log: Logger,
    private readonly store: ContentStore,
    private readonly dispatcher: Dispatcher,
    published: PublishedSet | null,
    options: RackAgentOptions,
  ) {
    this.published = published;
    this.lastSync = published?.publishedAt ?? null;
    this.bandwidth = new BandwidthLimiter(config.bandwidthLimit ?? null);
    this.reports = new Throttle(options.reportIntervalMs ?? 500, () => this.connection.report(this.report()));
    this.connection = new RegionConnection(
      {
        regionUrl: config.regionUrl,
        name: config.name,
        credential: config.credential,
        slowRetryMs: options.slowRetryMs ?? 30_000,
        reportTimeoutMs: options.reportTimeoutMs ?? 10_000,
      },
      log,
      {
        onConnect: () => this.onConnect(),
        onDisconnect: () => this.reports.cancel(),
        onManifest: (manifest) => this.onManifest(manifest),
        onSyncNow: () => this.requestSync("sync:now"),
      },
    );
    // The schedule is the floor, not the rule: manifests and sync:now usually get there first.
    this.cron = new Cron(config.syncSchedule, () => {
      if (this.connection.connected) this.requestSync("schedule");
      else log.debug("scheduled sync skipped: not connected to the region");
    });
    // The store's own check, in the sync slot (a sync never runs beside it): a bad file is pulled again.
    this.verifyCron = new Cron(config.verifySchedule ?? DEFAULT_VERIFY_SCHEDULE, () => this.requestVerify());
  }

  /** Re-hash the store before the next sync (now, if none runs); a bad file is removed and pulled again. */
  requestVerify(): void {
    if (this.closing) return;
    if (this.manifest === null) {
      this.log.info("scheduled verify skipped: no manifest from the region yet");
      return;
    }
    this.verifyWanted = true;
    this.requestSync("verify");
  }

  static async start(
    config: RackConfig,
    parentLog: Logger,
    options: RackAgentOptions = {},
  ): Promise<RackAgent> {
    // Every line names the rack: the demo runs two agents whose logs end up side by side.
    const log = parentLog.child({ rack: config.name });
    await mkdir(config.dataDir, { recursive: true });
    // The region's store has the same layout, and a sync deletes every file the manifest does not
    // name: pointed at the region's directory, a rack would delete the region's imports.
    if (await exists(join(config.dataDir, "bootstream.db"))) {
      throw new Error(
        `${config.dataDir} holds a region's database; give the rack a data directory of its own`,
      );
    }
    const store = await ContentStore.open(config.dataDir);
    const published = await readPublished(config.dataDir);
    // Leftovers of a crash mid-publish: a snapshot never switched to, or a temporary link.
    await removeStaleSnapshots(config.dataDir, published?.snapshot ?? null);
    if (published && !published.complete) {
      log.warn(
        { snapshot: published.snapshot },
        "published set is incomplete; the next sync publishes it again",
      );
    }
    const dispatcher = createDownloadAgent({ connections: config.downloadConcurrency });
    const agent = new RackAgent(config, log, store, dispatcher, published, options);
    agent.connection.open();
    log.info(
      {
        region: config.regionUrl,
        dataDir: config.dataDir,
        schedule: config.syncSchedule,
        verifySchedule: config.verifySchedule ?? DEFAULT_VERIFY_SCHEDULE,
        concurrency: config.downloadConcurrency,
        bandwidthLimit: formatBandwidth(config.bandwidthLimit ?? null),
        generation: published?.manifest?.generation ?? 0,
        files: published?.inventory.length ?? 0,
      },
      "rack agent started",
    );
    return agent;
  }

  /** What the region is told: the published set, not what the store happens to hold. */
  report(): RackReport {
    return {
      inventory: this.published?.inventory ?? [],
      generation: this.published?.manifest?.generation ?? 0,
      syncing: this.syncing,
      progress: this.progress,
      lastSync: this.lastSync,
      error: this.manifestError ?? this.syncError,
    };
  }

  requestSync(trigger: SyncTrigger): void {
    if (this.closing) return;
    // Without a manifest there is nothing to compare against; its arrival starts the first sync.
    if (this.manifest === null) return;
    if (this.running) {
      this.again ??= trigger;
      return;
    }
    this.running = this.loop(trigger).finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no sync runs and none is queued (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops the schedule, aborts downloads (their `.partial`s stay for the next start), closes the socket. */
  close(why?: string): Promise<void> {
    if (!this.closing && why) this.log.info({ why }, "shutting down");
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.cron.stop();
    this.verifyCron.stop();
    this.abort.abort(new Error("the rack agent is shutting down"));
    this.reports.cancel();
    await this.idle();
    this.connection.close();
    await this.dispatcher.destroy();
    this.log.info("rack agent stopped");
  }

  private onConnect(): void {
    this.reports.request();
    this.requestSync("reconnect");
  }

  private onManifest(value: unknown): void {
    const parsed = parseManifest(value);
    if (!parsed.ok) {
      this.manifestError = `invalid manifest from the region: ${parsed.error}`;
      this.log.error({ err: parsed.error }, "invalid manifest ignored");
      this.reports.request();
      return;
    }
    const manifest = parsed.manifest;
    this.manifestError = null;
    const first = this.manifest === null;
    const same = !first && sameManifest(manifest, this.manifest as Manifest);
    this.manifest = manifest;
    const files = manifest.images.reduce((n, image) => n + image.files.length, 0);
    this.log.info(
      { generation: manifest.generation, images: manifest.images.length, files },
      "manifest received",
    );
    // The region sends the manifest on every connect, right after the reconnect sync was requested.
    if (same && (this.running || this.again)) return;
    this.requestSync(first ? "start" : "manifest");
  }

  private async loop(trigger: SyncTrigger): Promise<void> {
    let next: SyncTrigger | null = trigger;
    while (next !== null && !this.closing) {
      this.again = null;
      await this.syncOnce(next);
      next = this.again;
    }
    // No sync runs or waits: what they held goes back now, not at the next sync (src/memory.ts).
    // One full collection of the agent's small heap per round of syncs.
    if (!this.closing) releaseAfterRun();
  }

  private async syncOnce(trigger: SyncTrigger): Promise<void> {
    const manifest = this.manifest as Manifest;
    const startedAt = Date.now();
    this.syncing = true;
    this.progress = null;
    this.log.info({ trigger, generation: manifest.generation }, "sync started");
    this.reports.request();
    try {
      if (this.verifyWanted) {
        this.verifyWanted = false;
        const { corrupt } = await verifyStore(this.store, this.abort.signal, this.log);
        // The published tree hard-links the bad bytes: publish again once they are pulled afresh.
        if (corrupt.length && this.published) this.published = { ...this.published, complete: false };
      }
      const outcome = await runSync(
        {
          store: this.store,
          dataDir: this.config.dataDir,
          fileUrl: (sha) => `${this.config.regionUrl}/files/${sha}`,
          secret: this.config.credential.value,
          dispatcher: this.dispatcher,
          concurrency: this.config.downloadConcurrency,
          bandwidth: this.bandwidth,
          signal: this.abort.signal,
          log: this.log,
          onProgress: (progress) => {
            this.progress = progress;
            this.reports.request();
          },
        },
        manifest,
        this.published,
      );
      this.published = outcome.published;
      const summary = {
        trigger,
        generation: manifest.generation,
        result: outcome.result,
        downloaded: outcome.downloaded,
        missing: outcome.missing,
        bytesFetched: outcome.bytesFetched,
        removedFiles: outcome.removedFiles,
        durationMs: Date.now() - startedAt,
      };
      if (outcome.result === "aborted") {
        this.log.info(summary, "sync aborted");
      } else if (outcome.result === "failed") {
        this.syncError = outcome.error;
        this.log.error({ ...summary, err: outcome.error }, "sync failed");
      } else {
        this.syncError = null;
        this.lastSync = new Date().toISOString();
        this.log.info(summary, "sync finished");
      }
    } catch (error) {
      if (this.abort.signal.aborted && isAbortError(error)) {
        this.log.info({ trigger, generation: manifest.generation }, "sync aborted");
      } else {
        // Local trouble (disk full while linking, permissions): the old snapshot is still current.
        const message = error instanceof Error ? error.message : String(error);
        this.syncError = message.length > 1000 ? message.slice(0, 997) + "..." : message;
        this.log.error({ trigger, generation: manifest.generation, err: error }, "sync failed");
      }
    } finally {
      this.syncing = false;
      this.progress = null;
      if (!this.closing) this.reports.request();
    }
  }
}

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
