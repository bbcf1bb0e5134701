import type { AuditEntry } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { AuditEntity } from "../db/entities";
import type { EventBus } from "../events";
import { now } from "../clock";

/** Who changed what. Recorded in the same transaction as the change; announced after it commits. */
export class AuditLog {
  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
  ) {}

  async record(m: EntityManager, by: string, action: string, detail: string): Promise<AuditEntry> {
    const entry = { at: now(), by, action, detail: detail.slice(0, 2000) };
    // A copy: TypeORM writes the generated id back into what it inserts, and `id` is not ours to send.
    await m.insert(AuditEntity, { ...entry });
    return entry;
  }

  announce(entry: AuditEntry): void {
    this.bus.emit("audit", { entry });
  }

  /** Records outside any other change (e.g. a token created). */
  async add(by: string, action: string, detail: string): Promise<void> {
    const entry = await this.db.write((m) => this.record(m, by, action, detail));
    this.announce(entry);
  }

  async list(limit = 100): Promise<AuditEntry[]> {
    const rows = await this.db.manager.find(AuditEntity, { order: { id: "DESC" }, take: limit });
    return rows.map(({ at, by, action, detail }) => ({ at, by, action, detail }));
  }
}
