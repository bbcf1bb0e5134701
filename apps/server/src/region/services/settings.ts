import type { Settings } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { SettingEntity } from "../db/entities";

const DEFAULTS: Settings = { autoImport: true, bandwidthLimit: null };

/** Key/value settings. `autoImport` and `bandwidthLimit` are public; internal keys live here too (e.g. the rack secret hash). */
export class SettingsStore {
  constructor(private readonly db: Database) {}

  async get(m: EntityManager = this.db.manager): Promise<Settings> {
    const rows = await m.find(SettingEntity, { where: [{ key: "autoImport" }, { key: "bandwidthLimit" }] });
    const value = (key: string) => rows.find((row) => row.key === key)?.value;
    const autoImport = value("autoImport");
    const bandwidthLimit = value("bandwidthLimit");
    return {
      autoImport: autoImport === undefined ? DEFAULTS.autoImport : autoImport === "true",
      bandwidthLimit: bandwidthLimit === undefined || bandwidthLimit === "" ? null : Number(bandwidthLimit),
    };
  }

  async setAutoImport(m: EntityManager, value: boolean): Promise<void> {
    await m.upsert(SettingEntity, { key: "autoImport", value: String(value) }, ["key"]);
  }

  async setBandwidthLimit(m: EntityManager, value: number | null): Promise<void> {
    await m.upsert(SettingEntity, { key: "bandwidthLimit", value: value === null ? "" : String(value) }, [
      "key",
    ]);
  }

  async getInternal(key: string): Promise<string | null> {
    const row = await this.db.manager.findOne(SettingEntity, { where: { key } });
    return row?.value ?? null;
  }

  async setInternal(m: EntityManager, key: string, value: string): Promise<void> {
    await m.upsert(SettingEntity, { key, value }, ["key"]);
  }

  /** Sets `key` unless it is set; returns the value that stands (another node's, if it was first). */
  async setInternalOnce(m: EntityManager, key: string, value: string): Promise<string> {
    await m.createQueryBuilder().insert().into(SettingEntity).values({ key, value }).orIgnore().execute();
    return (await m.findOneOrFail(SettingEntity, { where: { key } })).value;
  }
}
