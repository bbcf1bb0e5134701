import type { EntityManager } from "typeorm";
import type { Database } from "../database";
import { RackEntity, RackFileEntity, SettingEntity, type RackRow } from "../entities";

export type { RackRow };

/** Where SQLite keeps the last manifest generation (PostgreSQL: `leader_lease.manifest_generation`). */
const MANIFEST_GENERATION_KEY = "manifest.generation";

/** The `rack` and `rack_file` tables: what the region knows of each rack and what it has published. */
export class RackRepository {
  constructor(
    private readonly m: EntityManager,
    private readonly kind: Database["kind"],
  ) {}

  /**
   * The next manifest generation, at least `atLeast`, counted in the database (on PostgreSQL in the
   * lease row, inside the leader's fenced write), so generations keep growing across leaders and
   * restarts.
   */
  async nextManifestGeneration(atLeast: number): Promise<number> {
    if (this.kind === "postgres") {
      const result = (await this.m.query(
        "UPDATE leader_lease SET manifest_generation = GREATEST(manifest_generation + 1, $1) WHERE id = 1 RETURNING manifest_generation",
        [atLeast],
      )) as unknown[];
      // TypeORM answers an UPDATE … RETURNING as [rows, count] on PostgreSQL.
      const rows = (Array.isArray(result[0]) ? result[0] : result) as { manifest_generation: string }[];
      return Number(rows[0]?.manifest_generation ?? atLeast);
    }
    const row = await this.m.findOne(SettingEntity, { where: { key: MANIFEST_GENERATION_KEY } });
    const next = Math.max(Number(row?.value ?? 0) + 1, atLeast);
    await this.m.upsert(SettingEntity, { key: MANIFEST_GENERATION_KEY, value: String(next) }, ["key"]);
    return next;
  }

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
