import {
  defaultSelectionItems,
  normaliseSelectionItems,
  selectedImageIds,
  validateSelectionAgainstCatalogue,
  parseImageId,
  type Catalogue,
  type Selection,
  type SelectionItem,
} from "@bootstream/images";
import { CommandError } from "@bootstream/protocol";
import type { Database } from "../db/database";
import { SelectionEntity, type ImageRow } from "../db/entities";
import type { EventBus } from "../events";
import type { AuditLog } from "./audit";
import { ImageRegistry, titleFor } from "./images";
import type { SourceService } from "./source";
import { now } from "../clock";

function describe(items: readonly SelectionItem[]): string {
  return items.map((i) => `${i.os}/${i.release} [${i.arches.join(",")}]`).join(", ") || "nothing";
}

/**
 * The selection, saved optimistically: a save names the revision it was based on and fails with
 * `conflict` (carrying the current selection) when someone saved in between.
 */
export class SelectionService {
  private current: Selection = { revision: 0, items: [] };

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    private readonly audit: AuditLog,
    private readonly images: ImageRegistry,
    private readonly source: SourceService,
  ) {}

  async load(): Promise<Selection> {
    const initial = { id: 1, revision: 0, items: "[]", updatedBy: "system", updatedAt: now() };
    // Two nodes starting at once both try: the first insert wins, the other's is ignored.
    await this.db.write((m) =>
      m.createQueryBuilder().insert().into(SelectionEntity).values(initial).orIgnore().execute(),
    );
    const row = await this.db.manager.findOneOrFail(SelectionEntity, { where: { id: 1 } });
    this.current = { revision: row.revision, items: JSON.parse(row.items) as SelectionItem[] };
    return this.current;
  }

  get(): Selection {
    return this.current;
  }

  /** Revision 0 means nobody, not even the default, has chosen anything yet. */
  async initialised(): Promise<boolean> {
    return this.current.revision > 0;
  }

  /** The first time a catalogue is read, select what MAAS selects: the newest LTS, amd64. */
  async ensureDefault(catalogue: Catalogue): Promise<void> {
    if (this.current.revision > 0) return;
    try {
      await this.save(0, defaultSelectionItems(catalogue), "system");
    } catch (error) {
      // An admin saved first: theirs stands.
      if (!(error instanceof CommandError && error.code === "conflict")) throw error;
    }
  }

  async save(revision: number, rawItems: readonly SelectionItem[], by: string): Promise<Selection> {
    const items = normaliseSelectionItems(rawItems);
    const catalogue = this.source.cachedCatalogue();
    if (catalogue) {
      const problems = validateSelectionAgainstCatalogue(items, catalogue);
      if (problems.length) throw new CommandError("invalid", `cannot select that: ${problems.join("; ")}`);
    }
    const wanted = new Set(selectedImageIds(items));
    const added: ImageRow[] = [];
    for (const id of wanted) {
      if (this.images.get(id)) continue;
      const { os, release, arch } = parseImageId(id)!;
      added.push(this.images.newRow(os, release, arch, titleFor(catalogue, os, release)));
    }
    const removed = this.images
      .all()
      .map((row) => row.id)
      .filter((id) => !wanted.has(id));

    const { selection, entry } = await this.db.write(async (m) => {
      // The revision check and the write are one statement, so it holds across region nodes too.
      const result = await m
        .createQueryBuilder()
        .update(SelectionEntity)
        .set({ revision: revision + 1, items: JSON.stringify(items), updatedBy: by, updatedAt: now() })
        .where("id = 1 AND revision = :revision", { revision })
        .execute();
      if (result.affected !== 1) {
        const row = await m.findOneOrFail(SelectionEntity, { where: { id: 1 } });
        const latest: Selection = { revision: row.revision, items: JSON.parse(row.items) as SelectionItem[] };
        throw new CommandError(
          "conflict",
          `the selection changed since revision ${revision} (now ${latest.revision}, saved by ${row.updatedBy}); reload and apply your change again`,
          { selection: latest },
        );
      }
      await this.images.delete(m, removed);
      await this.images.insert(m, added);
      const entry = await this.audit.record(
        m,
        by,
        "selection:save",
        `revision ${revision + 1}: ${describe(items)}`,
      );
      return { selection: { revision: revision + 1, items }, entry };
    });
    this.current = selection;
    this.bus.emit("selection", { selection, by });
    this.images.commit(added, removed);
    this.audit.announce(entry);
    return selection;
  }
}
