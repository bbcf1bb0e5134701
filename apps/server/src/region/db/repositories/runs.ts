import type { EntityManager } from "typeorm";
import { IsNull } from "typeorm";
import { ImportRunEntity, type ImportRunRow } from "../entities";

/** The `import_run` table: one row per import; an unfinished one after a crash means "resume". */
export class ImportRunRepository {
  constructor(private readonly m: EntityManager) {}

  /** Returns the new run's id. */
  async start(trigger: string, startedAt: string): Promise<number> {
    const result = await this.m.insert(ImportRunEntity, {
      trigger,
      startedAt,
      finishedAt: null,
      error: null,
    });
    return Number((result.identifiers[0] as { id: number }).id);
  }

  async finish(id: number, finishedAt: string, error: string | null): Promise<void> {
    await this.m.update(ImportRunEntity, { id }, { finishedAt, error });
  }

  async unfinished(): Promise<ImportRunRow[]> {
    return this.m.find(ImportRunEntity, { where: { finishedAt: IsNull() }, order: { id: "ASC" } });
  }

  /** Closes the runs found unfinished (only those still unfinished: another node may have closed them). */
  async interrupt(ids: number[], finishedAt: string, error: string): Promise<void> {
    for (const id of ids)
      await this.m.update(ImportRunEntity, { id, finishedAt: IsNull() }, { finishedAt, error });
  }

  /** The newest run, finished or not. */
  async latest(): Promise<ImportRunRow | null> {
    return this.m.findOne(ImportRunEntity, { where: {}, order: { id: "DESC" } });
  }

  async all(): Promise<ImportRunRow[]> {
    return this.m.find(ImportRunEntity, { order: { id: "ASC" } });
  }
}
