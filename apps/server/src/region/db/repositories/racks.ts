import type { EntityManager } from "typeorm";
import { RackEntity, RackFileEntity, type RackRow } from "../entities";

export type { RackRow };

/** The `rack` and `rack_file` tables: what the region knows of each rack and what it has published. */
export class RackRepository {
  constructor(private readonly m: EntityManager) {}

  async all(): Promise<{ racks: RackRow[]; files: Map<string, string[]> }> {
    const racks = await this.m.find(RackEntity);
    const files = new Map<string, string[]>();
    for (const row of await this.m.find(RackFileEntity)) {
      const list = files.get(row.rackName) ?? [];
      list.push(row.sha256);
      files.set(row.rackName, list);
    }
    return { racks, files };
  }

  /** Nothing is connected at start: racks a crash left online are not. */
  async markAllOffline(): Promise<void> {
    await this.m.update(RackEntity, { online: true }, { online: false });
  }

  async put(row: RackRow): Promise<void> {
    await this.m.upsert(RackEntity, row, ["name"]);
  }

  async seen(name: string, lastSeen: string): Promise<void> {
    await this.m.update(RackEntity, { name }, { lastSeen });
  }

  /** The rack's published files change by `added` and `removed`. */
  async changeInventory(name: string, added: readonly string[], removed: readonly string[]): Promise<void> {
    for (const sha256 of removed) await this.m.delete(RackFileEntity, { rackName: name, sha256 });
    if (added.length)
      await this.m
        .createQueryBuilder()
        .insert()
        .into(RackFileEntity)
        .values(added.map((sha256) => ({ rackName: name, sha256 })))
        .orIgnore()
        .execute();
  }

  /** Forgets a rack that is offline (checked in the statement); returns whether it did. */
  async removeOffline(name: string): Promise<boolean> {
    const result = await this.m.delete(RackEntity, { name, online: false });
    if (!result.affected) return false;
    await this.m.delete(RackFileEntity, { rackName: name });
    return true;
  }
}
