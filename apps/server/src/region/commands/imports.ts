import type { Handler } from "./types";

// The audit row commits with the change: import:start's with the run's first row, import:stop's
// with the stopped run's last one.

export const importStart: Handler<"import:start"> = async (_payload, actor, region) => {
  const { state, entry } = await region.importer.start("manual", {
    by: actor.name,
    action: "import:start",
    detail: "import requested",
  });
  region.audit.announce(entry);
  return { import: state };
};

export const importStop: Handler<"import:stop"> = async (_payload, actor, region) => {
  const { state, entry } = await region.importer.stop(actor.name);
  region.audit.announce(entry);
  return { import: state };
};
