import type { AuditEntry } from "@bootstream/protocol";
import type { Database } from "../db/database";
import { Repositories, type AuditNote } from "../db/repositories";
import type { EventBus } from "../events";

export type { AuditNote };

/**
 * Who changed what. Each command's service records its note in the change's own transaction
 * (`tx.audit.record`) and the command announces the entry after it commits.
 */
export class AuditLog {
  private readonly data: Repositories;

  constructor(
    db: Database,
    private readonly bus: EventBus,
  ) {
    this.data = new Repositories(db);
  }

  announce(entry: AuditEntry): void {
    this.bus.emit("audit", { entry });
  }

  /** A note that goes with no other change (e.g. a stop when nothing ran): its own transaction. */
  async add(note: AuditNote): Promise<AuditEntry> {
    const entry = await this.data.write((tx) => tx.audit.record(note));
    this.announce(entry);
    return entry;
  }

  /** Newest first, `limit` entries older than the cursor `before`; `next` is the cursor of the page after. */
  async list(limit: number, before?: string): Promise<{ entries: AuditEntry[]; next: string | null }> {
    return this.data.read.audit.list(limit, before);
  }
}
