import type { ImagePlan, ImageRecord } from "@bootstream/images";
import type { EntityManager } from "typeorm";
import { ImageEntity, ImageFileEntity, type ImageFileRow } from "../entities";
import type { DatabaseKind } from "./index";

/**
 * The image and image_file tables. Every write is conditional on the row still being there (and,
 * for a switch, on the version's file list being whole), so concurrent writers on PostgreSQL cannot
 * resurrect a deselected image or leave file rows for one: the image row is locked (`FOR UPDATE`)
 * before its files are touched, and a selection that deletes the image waits for that lock.
 */
export class ImageRepository {
  constructor(
    private readonly m: EntityManager,
    private readonly kind: DatabaseKind,
  ) {}

  async all(): Promise<ImageRecord[]> {
    return this.m.find(ImageEntity);
  }

  async files(): Promise<ImageFileRow[]> {
    return this.m.find(ImageFileEntity);
  }

  /** Every sha256 any image's file list names (held or target version). */
  async neededFiles(): Promise<Set<string>> {
    const rows = await this.m.find(ImageFileEntity, { select: { sha256: true } });
    return new Set(rows.map((row) => row.sha256));
  }

  async insert(rows: ImageRecord[]): Promise<void> {
    if (rows.length) await this.m.insert(ImageEntity, rows);
  }

  async delete(ids: string[]): Promise<void> {
    // In id order, as applyPlan locks them: two transactions never wait on each other in a circle.
    for (const id of [...ids].sort()) {
      // The image row first: on PostgreSQL that waits for an applyPlan holding its lock, so the
      // file rows it committed are seen (and deleted) by the next statement.
      await this.m.delete(ImageEntity, { id });
      await this.m.delete(ImageFileEntity, { imageId: id });
    }
  }

  /** Updates the rows that still exist and returns those. Never an upsert. */
  async updateExisting(rows: ImageRecord[]): Promise<ImageRecord[]> {
    const applied: ImageRecord[] = [];
    // In id order, as every multi-row write here takes its row locks.
    for (const { id, ...change } of [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const result = await this.m.update(ImageEntity, { id }, change);
      if (result.affected) applied.push({ id, ...change });
    }
    return applied;
  }

  /** Locks the image row until the transaction ends; null when it is gone. */
  private async lock(id: string): Promise<ImageRecord | null> {
    const query = this.m.createQueryBuilder(ImageEntity, "image").where("image.id = :id", { id });
    if (this.kind === "postgres") query.setLock("pessimistic_write");
    return query.getOne();
  }

  /**
   * Records each planned version's file list and the changed rows. Images gone since planning
   * (deselected) get no file rows. Returns the rows written.
   */
  async applyPlan(plans: ImagePlan[], changed: ImageRecord[]): Promise<ImageRecord[]> {
    // Every row this transaction touches is locked first, in id order, as a selection's delete
    // takes them: concurrent writers queue instead of deadlocking.
    const present = new Set<string>();
    for (const id of [...new Set([...plans.map((p) => p.id), ...changed.map((c) => c.id)])].sort()) {
      if (await this.lock(id)) present.add(id);
    }
    for (const image of plans) {
      if (!present.has(image.id)) continue;
      await this.m.delete(ImageFileEntity, { imageId: image.id, version: image.version });
      const files = image.files.map((f) => ({
        imageId: image.id,
        version: image.version,
        sha256: f.sha256,
        size: f.size,
        ftype: f.ftype,
        path: f.path,
      }));
      if (files.length) await this.m.insert(ImageFileEntity, files);
    }
    return this.updateExisting(changed);
  }

  /**
   * The one write that makes an image serve `image.version`. Checked against the locked row, not
   * memory: an image deselected (or deselected and selected again) since the plan has no file list
   * for this version, and must not switch to files nobody keeps. `switch` is the lifecycle's
   * transition; null from it means nothing changes. Returns the row written, or null.
   */
  async switchVersion(
    image: ImagePlan,
    switchTo: (row: ImageRecord) => ImageRecord | null,
  ): Promise<ImageRecord | null> {
    const row = await this.lock(image.id);
    if (!row || (row.targetVersion !== image.version && row.version !== image.version)) return null;
    const files = await this.m.count(ImageFileEntity, {
      where: { imageId: image.id, version: image.version },
    });
    if (files !== image.files.length) return null;
    const next = switchTo(row);
    if (!next) return null;
    // The old version's file list goes in the same transaction as the switch.
    await this.m
      .createQueryBuilder()
      .delete()
      .from(ImageFileEntity)
      .where("image_id = :id AND version <> :version", { id: image.id, version: image.version })
      .execute();
    const [written] = await this.updateExisting([next]);
    return written ?? null;
  }
}
