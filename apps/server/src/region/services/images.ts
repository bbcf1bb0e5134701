import {
  downloadStarted,
  imageId,
  imageState,
  newImageRecord,
  progressed,
  type Catalogue,
  type ImagePlan,
  type ImageRecord,
  type ImageState,
} from "@bootstream/images";
import { Repositories } from "../db/repositories";
import type { Database } from "../db/database";
import type { ImageRow } from "../db/entities";
import type { EventBus } from "../events";
import type { Logger } from "../../log";
import { now } from "../clock";
import type { InternalEvents } from "../internal-events";

/** The title the catalogue gives a release ("24.04 LTS"), or the release name when it has none. */
export function titleFor(catalogue: Catalogue | null, os: string, release: string): string {
  if (!catalogue) return release;
  if (os === "ubuntu") return catalogue.ubuntu.releases.find((r) => r.release === release)?.title ?? release;
  return catalogue.other.find((o) => o.os === os && o.release === release)?.title ?? release;
}

/**
 * The region's images: records in the database (through `ImageRepository`), mirrored in memory
 * because every event and snapshot reads them. The transitions are the domain's
 * (`libs/images/src/lifecycle.ts`); this class persists what they return and announces it. Memory
 * changes only after the write committed; byte progress lives only in memory while it changes.
 */
export class ImageRegistry {
  private readonly rows = new Map<string, ImageRow>();
  private readonly data: Repositories;
  /** Writes of queued → downloading still in flight (awaited by `settled`). */
  private readonly writes = new Set<Promise<void>>();

  constructor(
    db: Database,
    private readonly bus: EventBus,
    /** Asks `racks.counts`; tells `image.committed`. */
    private readonly events: InternalEvents,
    private readonly log?: Logger,
  ) {
    this.data = new Repositories(db);
  }

  async load(): Promise<void> {
    this.rows.clear();
    for (const row of await this.data.read.images.all()) this.rows.set(row.id, row);
  }

  /** Every sha256 any image's file list names (held or target version). */
  async neededFiles(): Promise<Set<string>> {
    return this.data.read.images.neededFiles();
  }

  all(): ImageRow[] {
    return [...this.rows.values()];
  }

  get(id: string): ImageRow | undefined {
    return this.rows.get(id);
  }

  toState(row: ImageRow): ImageState {
    const racks = this.events.ask("racks.counts", row);
    return imageState(row, racks);
  }

  states(): ImageState[] {
    return this.all().map((row) => this.toState(row));
  }

  /** A new record for a freshly selected image: queued until an import plans it. */
  newRow(os: string, release: string, arch: string, title: string): ImageRow {
    return newImageRecord(imageId(os, release, arch), { os, release, arch, title }, now());
  }

  /** After the transaction committed: update memory (rows still known) and announce. */
  commit(changed: ImageRecord[], removed: string[] = [], added = true): void {
    for (const id of removed) {
      if (this.rows.delete(id)) this.bus.emit("image:removed", { id });
    }
    let any = removed.length > 0;
    for (const row of changed) {
      if (!added && !this.rows.has(row.id)) continue;
      this.rows.set(row.id, row);
      this.bus.emit("image", { image: this.toState(row) });
      any = true;
    }
    if (any)
      this.events.emit("image.committed", {
        changed: changed.filter((row) => this.rows.has(row.id)).map((row) => row.id),
        removed,
      });
  }

  /**
   * After a selection's transaction committed: memory holds exactly the images of `rows` (the table
   * as that transaction left it). An image memory holds that `rows` lacks is gone (this save removed
   * it, or a save that committed before it did). Rows memory already knows keep their in-memory
   * progress, except `added`, the fresh records that save itself inserted (an image deselected and
   * selected again starts afresh); any other row memory lacks is a save that committed before it
   * and has not reached memory yet.
   */
  reconcile(rows: readonly ImageRow[], added: readonly ImageRow[]): void {
    const present = new Set(rows.map((row) => row.id));
    const gone = [...this.rows.keys()].filter((id) => !present.has(id));
    const fresh = new Set(added.map((row) => row.id));
    this.commit(
      rows.filter((row) => !this.rows.has(row.id) || fresh.has(row.id)),
      gone,
    );
  }

  /** Persists the records that still exist, then updates memory and announces them. */
  async update(rows: ImageRecord[]): Promise<void> {
    this.commit(await this.save(rows), [], false);
  }

  /** One transaction: persists the rows that still exist, returns them. */
  private async save(rows: ImageRecord[]): Promise<ImageRecord[]> {
    if (rows.length === 0) return [];
    return this.data.write((tx) => tx.images.updateExisting(rows));
  }

  /**
   * An import's plan: each planned version's file list and the changed records, in one transaction
   * (images deselected since planning get no file rows); then memory and events.
   */
  async applyPlan(plans: ImagePlan[], changed: ImageRecord[]): Promise<void> {
    const applied = await this.data.write((tx) => tx.images.applyPlan(plans, changed));
    this.commit(applied, [], false);
  }

  /**
   * The one write that makes an image serve its planned version, checked against the locked row
   * (see `ImageRepository.switchVersion`); then memory and events. Returns whether it switched.
   */
  async switchVersion(
    image: ImagePlan,
    switchTo: (row: ImageRecord) => ImageRecord | null,
  ): Promise<boolean> {
    const done = await this.data.write((tx) => tx.images.switchVersion(image, switchTo));
    if (!done) return false;
    this.commit([done], [], false);
    return true;
  }

  /**
   * Applies a lifecycle transition to each image it changes, writes them in one transaction, then
   * announces them. Returns the records written.
   */
  async transition(
    ids: Iterable<string>,
    change: (row: ImageRow) => ImageRecord | null,
  ): Promise<ImageRecord[]> {
    const changed: ImageRecord[] = [];
    for (const id of ids) {
      const row = this.rows.get(id);
      const next = row && change(row);
      if (next) changed.push(next);
    }
    const applied = await this.save(changed);
    this.commit(applied, [], false);
    return applied;
  }

  /**
   * queued → downloading (of the image, or of its next version): written, then announced. Progress
   * goes on in memory meanwhile; a failed write is logged (crash recovery turns "downloading" back
   * into "queued" anyway) and never left unhandled.
   */
  beginDownload(id: string, bytesDone: number): boolean {
    const row = this.rows.get(id);
    if (!row) return false;
    const next = downloadStarted(row, bytesDone, now());
    if (!next) return false;
    // Progress that arrives before the write commits must see the new state.
    this.rows.set(id, next);
    const write = this.save([next])
      .then((applied) => {
        const latest = this.rows.get(id);
        if (applied.length && latest) this.bus.emit("image", { image: this.toState(latest) });
      })
      .catch((error: unknown) => {
        this.log?.error({ err: error, image: id }, "could not record that the download began");
      })
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
    return true;
  }

  /** Download progress: memory and a coalesced event only. */
  progress(id: string, bytesDone: number): void {
    const row = this.rows.get(id);
    if (!row) return;
    const next = progressed(row, bytesDone);
    if (!next) return;
    this.rows.set(id, next);
    this.bus.imageProgress(this.toState(next));
  }

  /** Resolves when every write `beginDownload` started has ended. */
  async settled(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes]);
  }

  /** Announces the images whose rack counts (and so maybe state) changed. */
  refreshChanged(): void {
    for (const row of this.rows.values()) {
      const next = this.toState(row);
      const told = this.bus.live.images.get(row.id);
      if (
        !told ||
        told.state !== next.state ||
        told.racks.synced !== next.racks.synced ||
        told.racks.total !== next.racks.total ||
        told.racks.syncing !== next.racks.syncing ||
        told.racks.offline !== next.racks.offline ||
        told.racks.failed !== next.racks.failed ||
        told.racks.error !== next.racks.error
      ) {
        this.bus.emit("image", { image: next });
      }
    }
  }
}
