import type { AuditEntry } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
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

  async list(limit: number): Promise<AuditEntry[]> {
    const rows = await this.m.find(AuditEntity, { order: { id: "DESC" }, take: limit });
    return rows.map(({ at, by, action, detail }) => ({ at, by, action, detail }));
  }
}
