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
import type { ImageRow } from "../db/entities";
import { Repositories } from "../db/repositories";
import type { EventBus } from "../events";
import type { AuditLog } from "./audit";
import { ImageRegistry, titleFor } from "./images";
import type { SourceService } from "./source";

function describe(items: readonly SelectionItem[]): string {
  return items.map((i) => `${i.os}/${i.release} [${i.arches.join(",")}]`).join(", ") || "nothing";
}

/**
 * The selection, saved optimistically: a save names the revision it was based on and fails with
 * `conflict` (carrying the current selection) when someone saved in between.
 */
export class SelectionService {
  private current: Selection = { revision: 0, items: [] };
  private readonly data: Repositories;

  constructor(
    db: Database,
    private readonly bus: EventBus,
    private readonly audit: AuditLog,
    private readonly images: ImageRegistry,
    private readonly source: SourceService,
  ) {
    this.data = new Repositories(db);
  }

  async load(): Promise<Selection> {
    // Two nodes starting at once both try: the first insert wins, the other's is ignored.
    await this.data.write((tx) => tx.selection.ensure());
    const { revision, items } = await this.data.read.selection.get();
    this.current = { revision, items };
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
      // What is selected now stays selectable, offered or not (its image is kept with a warning).
      const problems = validateSelectionAgainstCatalogue(items, catalogue, this.current.items);
      if (problems.length) throw new CommandError("invalid", `cannot select that: ${problems.join("; ")}`);
    }
    const wanted = new Set(selectedImageIds(items));

    const { selection, entry, added, rows } = await this.data.write(async (tx) => {
      // The revision check and the write are one statement, so it holds across region nodes too;
      // on PostgreSQL it also locks the selection row, so saves run one after the other from here.
      if (!(await tx.selection.saveIf(revision, items, by))) {
        const stored = await tx.selection.get();
        const latest: Selection = { revision: stored.revision, items: stored.items };
        throw new CommandError(
          "conflict",
          `the selection changed since revision ${revision} (now ${latest.revision}, saved by ${stored.updatedBy}); reload and apply your change again`,
          { selection: latest },
        );
      }
      // What to add and remove is read here, not from memory: a save that committed a moment ago
      // may not be in memory yet (its caller's code resumes later), and its rows are in the table.
      const existing = new Set((await tx.images.all()).map((row) => row.id));
      const added: ImageRow[] = [];
      for (const id of wanted) {
        if (existing.has(id)) continue;
        const { os, release, arch } = parseImageId(id)!;
        added.push(this.images.newRow(os, release, arch, titleFor(catalogue, os, release)));
      }
      const removed = [...existing].filter((id) => !wanted.has(id));
      await tx.images.delete(removed);
      await tx.images.insert(added);
      const entry = await tx.audit.record({
        by,
        action: "selection:save",
        detail: `revision ${revision + 1}: ${describe(items)}`,
      });
      return {
        selection: { revision: revision + 1, items },
        entry,
        added,
        rows: await tx.images.all(),
      };
    });
    // Two saves can commit in one order and resume here in the other: memory follows only the
    // newest revision, made whole from the rows that revision's transaction saw.
    if (selection.revision > this.current.revision) {
      this.current = selection;
      this.bus.emit("selection", { selection, by });
      this.images.reconcile(rows, added);
    }
    this.audit.announce(entry);
    return selection;
  }
}
