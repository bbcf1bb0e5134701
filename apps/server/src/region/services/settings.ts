import type { AuditEntry, Settings } from "@bootstream/protocol";
import type { Database } from "../db/database";
import { Repositories, type AuditNote } from "../db/repositories";

/** Key/value settings. `autoImport` and `bandwidthLimit` are public; internal keys live here too (e.g. the rack secret hash). */
export class SettingsStore {
  private readonly data: Repositories;

  constructor(db: Database) {
    this.data = new Repositories(db);
  }

  async get(): Promise<Settings> {
    return this.data.read.settings.get();
  }

  /** The change and its audit row, in one transaction; returns the settings as they now stand. */
  async update(
    change: Partial<Settings>,
    note: AuditNote,
  ): Promise<{ settings: Settings; entry: AuditEntry }> {
    return this.data.write(async (tx) => {
      const settings = await tx.settings.update(change);
      return { settings, entry: await tx.audit.record(note) };
    });
  }

  async getInternal(key: string): Promise<string | null> {
    return this.data.read.settings.getInternal(key);
  }

  async setInternal(key: string, value: string): Promise<void> {
    await this.data.write((tx) => tx.settings.set(key, value));
  }

  /** Deletes `key` when it still holds `value` (another node's newer value stays). */
  async deleteInternalIf(key: string, value: string): Promise<void> {
    await this.data.write((tx) => tx.settings.removeIf(key, value));
  }

  /** Sets `key` unless it is set; returns the value that stands (another node's, if it was first). */
  async setInternalOnce(key: string, value: string): Promise<string> {
    return this.data.write((tx) => tx.settings.setOnce(key, value));
  }

  /** The health probe: a write that needs fresh pages, undone in the same transaction. */
  async probe(payload: string): Promise<void> {
    await this.data.write(async (tx) => {
      await tx.settings.set("health.probe", payload);
      await tx.settings.remove("health.probe");
    });
  }
}
