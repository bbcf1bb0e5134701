import type { Selection, SelectionItem } from "@bootstream/images";
import type { EntityManager } from "typeorm";
import { SelectionEntity } from "../entities";
import { now } from "../../clock";

export type StoredSelection = Selection & { updatedBy: string };

/** The one `selection` row, written optimistically: a save names the revision it was based on. */
export class SelectionRepository {
  constructor(private readonly m: EntityManager) {}

  /** Creates revision 0 unless it exists (two nodes starting at once: the first insert wins). */
  async ensure(): Promise<void> {
    const initial = { id: 1, revision: 0, items: "[]", updatedBy: "system", updatedAt: now() };
    await this.m.createQueryBuilder().insert().into(SelectionEntity).values(initial).orIgnore().execute();
  }

  async get(): Promise<StoredSelection> {
    const row = await this.m.findOneOrFail(SelectionEntity, { where: { id: 1 } });
    return {
      revision: row.revision,
      items: JSON.parse(row.items) as SelectionItem[],
      updatedBy: row.updatedBy,
    };
  }

  /**
   * Saves `items` as revision + 1 if the stored revision is still `revision`: the check and the write
   * are one statement, so it holds across region nodes. Returns false when someone saved in between.
   */
  async saveIf(revision: number, items: readonly SelectionItem[], by: string): Promise<boolean> {
    const result = await this.m
      .createQueryBuilder()
      .update(SelectionEntity)
      .set({ revision: revision + 1, items: JSON.stringify(items), updatedBy: by, updatedAt: now() })
      .where("id = 1 AND revision = :revision", { revision })
      .execute();
    return result.affected === 1;
  }
}
