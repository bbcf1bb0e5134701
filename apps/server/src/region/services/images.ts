import { imageId, type Catalogue, type ImageState, type ImageStatus } from "@bootstream/images";
import type { EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { ImageEntity, ImageFileEntity, type ImageRow } from "../db/entities";
import type { EventBus } from "../events";
import { now } from "../clock";
import type { InternalEvents } from "../internal-events";

/** The title the catalogue gives a release ("24.04 LTS"), or the release name when it has none. */
export function titleFor(catalogue: Catalogue | null, os: string, release: string): string {
  if (!catalogue) return release;
  if (os === "ubuntu") return catalogue.ubuntu.releases.find((r) => r.release === release)?.title ?? release;
  return catalogue.other.find((o) => o.os === os && o.release === release)?.title ?? release;
}

/**
 * The region's images: rows in the database, mirrored in memory because every event and snapshot
 * reads them. Byte progress lives only in memory while it changes (see `progress`); every state
 * change is written before it is announced.
 */
export class ImageRegistry {
  private readonly rows = new Map<string, ImageRow>();

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    /** Asks `racks.counts`; tells `image.committed`. */
    private readonly events: InternalEvents,
  ) {}

  async load(): Promise<void> {
    this.rows.clear();
    for (const row of await this.db.manager.find(ImageEntity)) this.rows.set(row.id, row);
  }

  all(): ImageRow[] {
    return [...this.rows.values()];
  }

  get(id: string): ImageRow | undefined {
    return this.rows.get(id);
  }

  toState(row: ImageRow): ImageState {
    const racks = this.events.ask("racks.counts", row);
    // An image is rack-synced once every rack that counts holds all of it; the database keeps "synced".
    const state: ImageStatus =
      row.state === "synced" && racks.total > 0 && racks.synced === racks.total
        ? "rack-synced"
        : (row.state as ImageStatus);
    const served = row.state === "synced" && row.version !== null;
    return {
      id: row.id,
      os: row.os,
      release: row.release,
      arch: row.arch,
      title: row.title,
      version: row.targetVersion && row.state !== "synced" ? row.targetVersion : row.version,
      state,
      bytesTotal: row.bytesTotal,
      bytesDone: row.bytesDone,
      racks,
      // A held version with an error is still served: that error is a warning, not a failure.
      error: served ? null : row.error,
      warning: served ? row.error : null,
      next: null,
      updatedAt: row.updatedAt,
    };
  }

  states(): ImageState[] {
    return this.all().map((row) => this.toState(row));
  }

  /** A new row for a freshly selected image: queued until an import plans it. */
  newRow(os: string, release: string, arch: string, title: string): ImageRow {
    return {
      id: imageId(os, release, arch),
      os,
      release,
      arch,
      title,
      version: null,
      targetVersion: null,
      state: "queued",
      bytesTotal: 0,
      bytesDone: 0,
      error: null,
      syncedAt: null,
      updatedAt: now(),
    };
  }

  /** Inserts freshly selected rows inside the caller's transaction; call `commit` after it commits. */
  async insert(m: EntityManager, rows: ImageRow[]): Promise<void> {
    if (rows.length) await m.insert(ImageEntity, rows);
  }

  /**
   * Updates rows that still exist, inside the caller's transaction, and returns those it updated.
   * Never an upsert: an image deselected meanwhile must not come back because an import finished.
   */
  async updateExisting(m: EntityManager, rows: ImageRow[]): Promise<ImageRow[]> {
    const applied: ImageRow[] = [];
    for (const { id, ...change } of rows) {
      const result = await m.update(ImageEntity, { id }, change);
      if (result.affected) applied.push({ id, ...change });
    }
    return applied;
  }

  async delete(m: EntityManager, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) {
      await m.delete(ImageEntity, { id });
      await m.delete(ImageFileEntity, { imageId: id });
    }
  }

  /** After the transaction committed: update memory and announce. */
  commit(changed: ImageRow[], removed: string[] = []): void {
    for (const id of removed) {
      if (this.rows.delete(id)) this.bus.emit("image:removed", { id });
    }
    for (const row of changed) {
      this.rows.set(row.id, row);
      this.bus.emit("image", { image: this.toState(row) });
    }
    if (changed.length || removed.length)
      this.events.emit("image.committed", { changed: changed.map((row) => row.id), removed });
  }

  /** Persists (rows that still exist) and announces them, in one step. */
  async update(rows: ImageRow[]): Promise<void> {
    const applied = await this.db.write((m) => this.updateExisting(m, rows));
    this.commit(applied.filter((row) => this.rows.has(row.id)));
  }

  /**
   * queued → downloading: announced at once (progress follows immediately), written behind. Crash
   * recovery turns "downloading" back into "queued" anyway, so the order cannot lose anything.
   */
  beginDownload(id: string, bytesDone: number): void {
    const row = this.rows.get(id);
    if (!row || row.state !== "queued") return;
    const next = ImageRegistry.withState(row, "downloading", { bytesDone });
    this.rows.set(id, next);
    this.bus.emit("image", { image: this.toState(next) });
    // Writes whatever is current when the queue gets to it, so it can never undo a later change.
    void this.db.write(async (m) => {
      const latest = this.rows.get(id);
      if (latest) await this.updateExisting(m, [latest]);
    });
  }

  /** Download progress: memory and a coalesced event only. */
  progress(id: string, bytesDone: number): void {
    const row = this.rows.get(id);
    if (!row) return;
    row.bytesDone = bytesDone;
    this.bus.imageProgress(this.toState(row));
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
        told.racks.syncing !== next.racks.syncing
      ) {
        this.bus.emit("image", { image: next });
      }
    }
  }

  static withState(row: ImageRow, state: ImageStatus, change: Partial<ImageRow> = {}): ImageRow {
    return { ...row, ...change, state, updatedAt: now() };
  }
}
