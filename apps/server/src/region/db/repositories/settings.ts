import type { ImportWindow, Settings } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
import { SettingEntity } from "../entities";

const DEFAULTS: Settings = { autoImport: true, bandwidthLimit: null, importWindow: null };

/**
 * The key/value `setting` table: the public settings and internal keys (the rack secret's hash).
 * Every write is one `INSERT … ON CONFLICT DO UPDATE`, atomic on both databases.
 */
export class SettingsRepository {
  constructor(private readonly m: EntityManager) {}

  async get(): Promise<Settings> {
    const rows = await this.m.find(SettingEntity, {
      where: [{ key: "autoImport" }, { key: "bandwidthLimit" }, { key: "importWindow" }],
    });
    const value = (key: string) => rows.find((row) => row.key === key)?.value;
    const autoImport = value("autoImport");
    const bandwidthLimit = value("bandwidthLimit");
    const importWindow = value("importWindow");
    return {
      autoImport: autoImport === undefined ? DEFAULTS.autoImport : autoImport === "true",
      bandwidthLimit: bandwidthLimit === undefined || bandwidthLimit === "" ? null : Number(bandwidthLimit),
      importWindow: importWindow ? readWindow(importWindow) : DEFAULTS.importWindow,
    };
  }

  /** Writes the fields given; returns the settings as they stand after it. */
  async update(change: Partial<Settings>): Promise<Settings> {
    if (change.autoImport !== undefined) await this.set("autoImport", String(change.autoImport));
    if (change.bandwidthLimit !== undefined)
      await this.set("bandwidthLimit", change.bandwidthLimit === null ? "" : String(change.bandwidthLimit));
    if (change.importWindow !== undefined) {
      const window = change.importWindow;
      await this.set(
        "importWindow",
        window === null
          ? ""
          : JSON.stringify({ start: window.start, end: window.end, timezone: window.timezone }),
      );
    }
    return this.get();
  }

  async getInternal(key: string): Promise<string | null> {
    const row = await this.m.findOne(SettingEntity, { where: { key } });
    return row?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.m.upsert(SettingEntity, { key, value }, ["key"]);
  }

  /** Sets `key` unless it is set; returns the value that stands (another node's, if it was first). */
  async setOnce(key: string, value: string): Promise<string> {
    await this.m
      .createQueryBuilder()
      .insert()
      .into(SettingEntity)
      .values({ key, value })
      .orIgnore()
      .execute();
    return (await this.m.findOneOrFail(SettingEntity, { where: { key } })).value;
  }

  /** Deletes `key` when it still holds `value` (another node's newer value stays). */
  async removeIf(key: string, value: string): Promise<void> {
    await this.m.delete(SettingEntity, { key, value });
  }

  async remove(key: string): Promise<void> {
    await this.m.delete(SettingEntity, { key });
  }
}

function readWindow(text: string): ImportWindow {
  const { start, end, timezone } = JSON.parse(text) as ImportWindow;
  return { start, end, timezone };
}
