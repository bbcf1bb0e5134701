import type { Handler } from "./types";

export const selectionSave: Handler<"selection:save"> = async ({ revision, items }, actor, region) => {
  const selection = await region.selection.save(revision, items, actor.name);
  // As MAAS: saving the selection starts an import at once (or re-plans the running one when it ends).
  region.importer.request("selection");
  return { selection };
};
