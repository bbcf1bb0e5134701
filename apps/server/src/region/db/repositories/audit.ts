import type { AuditEntry } from "@bootstream/protocol";
import { LessThan, type EntityManager } from "typeorm";
import { AuditEntity } from "../entities";
import { now } from "../../clock";

/** What a command says it did, recorded in the command's own transaction. */
export type AuditNote = { by: string; action: string; detail: string };

export class AuditRepository {
  constructor(private readonly m: EntityManager) {}

  async record(note: AuditNote): Promise<AuditEntry> {
    const entry: AuditEntry = {
      at: now(),
      by: note.by,
      action: note.action,
      detail: note.detail.slice(0, 2000),
    };
    // A copy: TypeORM writes the generated id back into what it inserts, and `id` is not ours to send.
    await this.m.insert(AuditEntity, { ...entry });
    return entry;
  }

  /** Newest first, `limit` entries older than the cursor `before`; `next` is the cursor of the page after. */
  async list(limit: number, before?: string): Promise<{ entries: AuditEntry[]; next: string | null }> {
    const rows = await this.m.find(AuditEntity, {
      ...(before === undefined ? {} : { where: { id: LessThan(Number(before)) } }),
      order: { id: "DESC" },
      take: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      entries: page.map(({ at, by, action, detail }) => ({ at, by, action, detail })),
      next: rows.length > limit ? String(page[page.length - 1]!.id) : null,
    };
  }
}
