import {
  BandwidthLimiter,
  ContentStore,
  DownloadError,
  createDownloadAgent,
  downloadFile,
  isAbortError,
  planImport,
  resolveItemUrl,
  runPool,
  unreferencedFiles,
  type ImagePlan,
  type Plan,
  type PlannedFile,
  type SourceContents,
} from "@bootstream/images";
import { IDLE_IMPORT, type ImportState, type ImportTrigger } from "@bootstream/protocol";
import type { Dispatcher } from "undici";
import { IsNull } from "typeorm";
import type { Logger } from "../../log";
import type { Database } from "../db/database";
import { ImageEntity, ImageFileEntity, ImportRunEntity, type ImageRow } from "../db/entities";
import type { EventBus } from "../events";
import { ImageRegistry } from "../services/images";
import type { SelectionService } from "../services/selection";
import type { SourceService } from "../services/source";
import { now } from "../clock";
import { copyLocalFile } from "./local-copy";
import type { InternalEvents } from "../internal-events";

export type ImporterOptions = {
  concurrency: number;
  /** DOWNLOAD_MIN_RATE: a slower transfer is cut and retried (downloadFile's default otherwise). */
  minRate?: { bytesPerSecond: number; windowMs: number };
  /** Asked for the files racks still pull (`racks.pinned`); told `import.finished`. */
  events?: InternalEvents;
};

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Runs imports one at a time: read the source, plan, download what is missing, switch each image to
 * its new version once every file is verified, drop what nothing needs. A request while an import
 * runs makes it run once more when it ends (selections saved mid-import are never lost).
 */
export class Importer {
  private running: Promise<void> | null = null;
  private again: ImportTrigger | null = null;
  private abort: AbortController | null = null;
  private stoppedBy: string | null = null;
  private closing = false;
  private gcWanted = false;
  private current: ImportState = { ...IDLE_IMPORT };
  private readonly dispatcher: Dispatcher;
  /** settings.bandwidthLimit: one cap shared by all of an import's downloads (local copies are not capped). */
  private readonly bandwidth = new BandwidthLimiter(null);

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly store: ContentStore,
    private readonly source: SourceService,
    private readonly selection: SelectionService,
    private readonly images: ImageRegistry,
    private readonly options: ImporterOptions,
  ) {
    this.dispatcher = createDownloadAgent({ connections: options.concurrency });
  }

  /** Applies at once, to the downloads running now as to later ones. */
  setBandwidthLimit(bytesPerSecond: number | null): void {
    if (bytesPerSecond === this.bandwidth.bytesPerSecond) return;
    this.bandwidth.setLimit(bytesPerSecond);
    this.log.info({ bandwidthLimit: bytesPerSecond }, "bandwidth limit set");
  }

  get state(): ImportState {
    return this.current;
  }

  /**
   * After a crash: images caught mid-download go back to queued, and an import that never finished
   * is reported as interrupted. Returns its trigger so the caller can resume it.
   */
  async recover(): Promise<ImportTrigger | null> {
    const stale = this.images.all().filter((row) => row.state === "downloading");
    if (stale.length) await this.images.update(stale.map((row) => ImageRegistry.withState(row, "queued")));
    const unfinished = await this.db.manager.find(ImportRunEntity, { where: { finishedAt: IsNull() } });
    if (unfinished.length === 0) return null;
    await this.db.write(async (m) => {
      for (const run of unfinished) {
        await m.update(
          ImportRunEntity,
          { id: run.id },
          { finishedAt: now(), error: "interrupted: the region stopped" },
        );
      }
    });
    return (unfinished.at(-1)!.trigger as ImportTrigger) ?? "manual";
  }

  request(trigger: ImportTrigger): ImportState {
    if (this.closing) return this.current;
    if (this.running) {
      this.again ??= trigger;
      return this.current;
    }
    this.start(trigger, false);
    return this.current;
  }

  /**
   * Drops store files nothing needs. Runs in the importer's slot, never beside an import, so it
   * cannot see a plan half-applied or delete a file a plan just counted as stored.
   */
  requestGarbageCollection(): void {
    if (this.closing) return;
    if (this.running) {
      this.gcWanted = true;
      return;
    }
    this.start(null, true);
  }

  private start(trigger: ImportTrigger | null, gcFirst: boolean): void {
    this.running = (async () => {
      if (gcFirst) await this.collectGarbageLogged();
      let next = trigger ?? this.again;
      while (next && !this.closing) {
        this.again = null;
        await this.runOnce(next);
        // Requests that came in during the run (after any stop began) run next; none are lost.
        next = this.again;
      }
      if (this.gcWanted && !this.closing) {
        this.gcWanted = false;
        await this.collectGarbageLogged();
      }
    })()
      .catch((error: unknown) => {
        // A write refused (lease lost) or a database gone: the run stays unfinished for the next leader.
        this.log.error({ err: error }, "import stopped by an error");
      })
      .finally(() => {
        this.running = null;
      });
  }

  /** Aborts the downloads (their `.partial` files stay for the next import) and forgets queued re-runs. */
  async stop(by: string): Promise<ImportState> {
    this.again = null;
    if (!this.running || !this.abort) return this.current;
    this.stoppedBy = by;
    this.abort.abort(new Error(`stopped by ${by}`));
    const running = this.running;
    await running;
    return this.current;
  }

  /** Waits for the running import (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Shutdown: the run is aborted but left unfinished in the database, so the next start resumes it
   * exactly as after a crash; only the downloads' `.partial` files carry over.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.again = null;
    this.abort?.abort(new Error("region shutting down"));
    await this.idle().catch((error: unknown) => this.log.warn({ err: error }, "import ended with an error"));
    await this.dispatcher.close();
  }

  /**
   * This node stops leading: like a shutdown (the run stays unfinished, so the next leader resumes
   * it), but this importer may run again if the node leads again.
   */
  async halt(): Promise<void> {
    this.closing = true;
    this.again = null;
    this.abort?.abort(new Error("this region node stopped leading"));
    try {
      await this.idle();
    } catch (error) {
      this.log.warn({ err: error }, "import ended with an error while stepping down");
    } finally {
      this.closing = false;
    }
  }

  private announce(state: ImportState): void {
    this.current = state;
    this.bus.emit("import", { import: state });
  }

  private async runOnce(trigger: ImportTrigger): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    this.stoppedBy = null;
    const startedAt = now();
    // Announced before the first await, so the command that asked for it answers "running".
    this.announce({ running: true, trigger, startedAt, finishedAt: null, error: null });
    const run = await this.db.write((m) =>
      m.save(ImportRunEntity, { trigger, startedAt, finishedAt: null, error: null }),
    );
    this.log.info({ trigger }, "import started");

    let error: string | null = null;
    try {
      const contents = await this.source.read(abort.signal);
      await this.selection.ensureDefault(contents.catalogue);
      error = await this.importFrom(contents, abort.signal);
    } catch (caught) {
      error = describeError(caught);
    }
    this.abort = null;
    if (this.closing) {
      // Left unfinished on purpose: recover() resumes it at the next start.
      await this.requeueUnfinished();
      this.log.info({ trigger }, "import interrupted by shutdown; it resumes at the next start");
      return;
    }
    if (this.stoppedBy) {
      error = `stopped by ${this.stoppedBy}`;
      await this.requeueUnfinished();
    }
    const finishedAt = now();
    await this.db.write((m) => m.update(ImportRunEntity, { id: run.id }, { finishedAt, error }));
    this.announce({ running: false, trigger, startedAt, finishedAt, error });
    this.log.info({ trigger, error }, "import finished");
    this.options.events?.emit("import.finished", { error });
  }

  /** Returns the import's error summary, or null when every image made it. */
  private async importFrom(contents: SourceContents, signal: AbortSignal): Promise<string | null> {
    const held = new Map(
      this.images.all().map((row) => [row.id, { version: row.version, state: row.state as "synced" }]),
    );
    const plan = planImport({
      selection: this.selection.get().items,
      offered: contents.images,
      held,
      stored: new Set(await this.store.list()),
    });
    await this.applyPlan(plan, contents);
    const failures = await this.download(plan, contents.url, signal);
    signal.throwIfAborted();
    await this.collectGarbageLogged();
    const unavailable = plan.unavailable.map((u) => u.id);
    const problems = [...failures, ...unavailable.map((id) => `${id} is not offered by the source`)];
    return problems.length ? `${problems.length} image(s) failed: ${problems.slice(0, 3).join("; ")}` : null;
  }

  /**
   * Records each image's target version and files, switches the ones already complete, and marks
   * what the source no longer offers. Images deselected since planning are left alone.
   */
  private async applyPlan(plan: Plan, contents: SourceContents): Promise<void> {
    const changed: ImageRow[] = [];
    const unavailable = new Set(plan.unavailable.map((u) => u.id));
    for (const row of this.images.all()) {
      if (!unavailable.has(row.id)) continue;
      const error = `not offered by ${contents.url}`;
      // A held version stays whole and servable (and on the racks); it just cannot be updated.
      if (row.state === "synced" && row.version)
        changed.push({ ...row, targetVersion: null, error: `${error}; keeping ${row.version}` });
      else changed.push(ImageRegistry.withState(row, "failed", { error }));
    }
    for (const image of plan.images) {
      const row = this.images.get(image.id);
      if (row) changed.push(this.planned(row, image));
    }
    const applied = await this.db.write(async (m) => {
      for (const image of plan.images) {
        if (!(await m.exists(ImageEntity, { where: { id: image.id } }))) continue;
        const files = image.files.map((f) => ({
          imageId: image.id,
          version: image.version,
          sha256: f.sha256,
          size: f.size,
          ftype: f.ftype,
          path: f.path,
        }));
        await m.delete(ImageFileEntity, { imageId: image.id, version: image.version });
        if (files.length) await m.insert(ImageFileEntity, files);
      }
      return this.images.updateExisting(m, changed);
    });
    this.images.commit(applied.filter((row) => this.images.get(row.id)));
    // Images that already hold every file switch now, in one write each.
    for (const image of plan.images) if (image.missing.length === 0) await this.switchVersion(image);
  }

  private planned(row: ImageRow, image: ImagePlan): ImageRow {
    const holdsOlder = row.state === "synced" && row.version !== null && row.version !== image.version;
    if (holdsOlder) {
      // The held version stays synced and servable while the new one downloads beside it.
      return { ...row, targetVersion: image.version, title: image.title };
    }
    if (row.state === "synced" && row.version === image.version) return { ...row, title: image.title };
    return ImageRegistry.withState(row, "queued", {
      targetVersion: image.version,
      title: image.title,
      bytesTotal: image.bytesTotal,
      bytesDone: image.bytesStored,
      error: null,
    });
  }

  /**
   * The one write that makes an image serve its new version. Checked against the database, not
   * memory: an image deselected (or deselected and selected again) since this plan was made has no
   * file list for this version any more, and must not be switched to files nobody keeps.
   */
  private async switchVersion(image: ImagePlan): Promise<void> {
    const done = await this.db.write(async (m) => {
      const row = await m.findOne(ImageEntity, { where: { id: image.id } });
      if (!row || (row.targetVersion !== image.version && row.version !== image.version)) return null;
      const files = await m.count(ImageFileEntity, { where: { imageId: image.id, version: image.version } });
      if (files !== image.files.length) return null;
      const next = ImageRegistry.withState(row, "synced", {
        version: image.version,
        targetVersion: null,
        title: image.title,
        bytesTotal: image.bytesTotal,
        bytesDone: image.bytesTotal,
        error: null,
        syncedAt: row.version === image.version && row.syncedAt ? row.syncedAt : now(),
      });
      const unchanged =
        row.state === "synced" &&
        row.version === next.version &&
        row.targetVersion === null &&
        row.bytesDone === next.bytesDone &&
        row.error === null;
      if (unchanged) return null;
      // The old version's file list goes in the same transaction as the switch.
      await m
        .createQueryBuilder()
        .delete()
        .from(ImageFileEntity)
        .where("image_id = :id AND version <> :version", { id: image.id, version: image.version })
        .execute();
      await this.images.updateExisting(m, [next]);
      return next;
    });
    if (!done) return;
    this.images.commit([done]);
    this.log.info({ image: image.id, version: image.version }, "image synced");
  }

  /** Downloads every missing file, DOWNLOAD_CONCURRENCY at a time. Returns one line per failed image. */
  private async download(plan: Plan, sourceUrl: string, signal: AbortSignal): Promise<string[]> {
    const byId = new Map(plan.images.map((image) => [image.id, image]));
    const remaining = new Map(plan.images.map((image) => [image.id, image.missing.length]));
    const done = new Map(plan.images.map((image) => [image.id, image.bytesStored]));
    const failed = new Map<string, string>();

    const progress = (ids: string[], delta: number) => {
      for (const id of ids) {
        const row = this.images.get(id);
        if (!row || failed.has(id)) continue;
        const bytes = (done.get(id) ?? 0) + delta;
        done.set(id, bytes);
        // An image holding an older synced version updates quietly: it stays "synced" until the switch.
        if (row.state === "queued") this.images.beginDownload(id, bytes);
        else if (row.state === "downloading") this.images.progress(id, bytes);
      }
    };

    await runPool(
      plan.fetch,
      this.options.concurrency,
      async ({ file, images }) => {
        const waiting = images.filter((id) => !failed.has(id) && this.images.get(id));
        if (waiting.length === 0) return;
        try {
          await this.fetchFile(file, sourceUrl, signal, (delta) => progress(waiting, delta));
        } catch (error) {
          if (isAbortError(error) || signal.aborted) throw error;
          const message = error instanceof DownloadError ? error.message : describeError(error);
          this.log.warn({ sha256: file.sha256, path: file.path, error: message }, "file download failed");
          for (const id of waiting) {
            if (failed.has(id)) continue;
            failed.set(id, message);
            await this.failImage(id, `${file.ftype} ${file.path}: ${message}`);
          }
          return;
        }
        for (const id of waiting) {
          const left = (remaining.get(id) ?? 1) - 1;
          remaining.set(id, left);
          if (left !== 0 || failed.has(id)) continue;
          try {
            await this.switchVersion(byId.get(id)!);
          } catch (error) {
            // The file is stored and verified; the database did not take the switch. Say so, and
            // let the next import (which finds every file stored) switch it.
            const message = `could not record the new version: ${describeError(error)}`;
            this.log.error({ err: error, image: id }, "version switch failed");
            failed.set(id, message);
            await this.failImage(id, message).catch((e: unknown) =>
              this.log.error({ err: e, image: id }, "could not mark the image failed"),
            );
          }
        }
      },
      signal,
    );
    return [...failed].map(([id, message]) => `${id}: ${message}`);
  }

  private async fetchFile(
    file: PlannedFile,
    sourceUrl: string,
    signal: AbortSignal,
    onProgress: (delta: number) => void,
  ): Promise<void> {
    const url = resolveItemUrl(sourceUrl, file.path);
    if (url.startsWith("file:")) {
      await copyLocalFile(this.store, new URL(url), file.sha256, file.size, signal, onProgress);
      return;
    }
    await downloadFile({
      store: this.store,
      url,
      sha256: file.sha256,
      size: file.size,
      signal,
      onProgress,
      dispatcher: this.dispatcher,
      bandwidth: this.bandwidth,
      ...(this.options.minRate === undefined ? {} : { minRate: this.options.minRate }),
    });
  }

  private async failImage(id: string, error: string): Promise<void> {
    const row = this.images.get(id);
    if (!row) return;
    if (row.state === "synced") {
      // The held version is still whole and servable: keep it, and say the update failed.
      await this.images.update([{ ...row, targetVersion: null, error: `update failed: ${error}` }]);
      return;
    }
    await this.images.update([ImageRegistry.withState(row, "failed", { error })]);
  }

  /** After a stop: what had not finished goes back to queued; the `.partial` files stay for next time. */
  private async requeueUnfinished(): Promise<void> {
    const unfinished = this.images
      .all()
      .filter((row) => row.state === "downloading" || row.state === "queued");
    if (unfinished.length)
      await this.images.update(unfinished.map((row) => ImageRegistry.withState(row, "queued")));
  }

  private async collectGarbageLogged(): Promise<void> {
    await this.collectGarbage().catch((error: unknown) =>
      this.log.error({ err: error }, "garbage collection failed"),
    );
  }

  /**
   * Deletes store files (and `.partial`s) that no image needs — neither a held nor a target
   * version — and that no rack is still pulling. Call it only from the importer's slot.
   */
  private async collectGarbage(): Promise<void> {
    const rows = await this.db.manager.find(ImageFileEntity, { select: { sha256: true } });
    const needed = new Set(rows.map((row) => row.sha256));
    for (const sha of (await this.options.events?.ask("racks.pinned")) ?? []) needed.add(sha);
    const drop = unreferencedFiles(await this.store.list(), needed);
    for (const sha of drop) await this.store.remove(sha);
    const partials = unreferencedFiles(await this.store.listPartials(), needed);
    for (const sha of partials) await this.store.discardPartial(sha);
    if (drop.length || partials.length)
      this.log.info({ files: drop.length, partials: partials.length }, "removed files no image needs");
  }
}
