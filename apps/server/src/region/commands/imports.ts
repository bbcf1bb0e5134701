import type { Handler } from "./types";

export const importStart: Handler<"import:start"> = async (_payload, actor, region) => {
  await region.audit.add(actor.name, "import:start", "import requested");
  return { import: region.importer.request("manual") };
};

export const importStop: Handler<"import:stop"> = async (_payload, actor, region) => {
  const running = region.importer.state.running;
  const state = await region.importer.stop(actor.name);
  await region.audit.add(
    actor.name,
    "import:stop",
    running ? "import stopped" : "stop requested; no import was running",
  );
  return { import: state };
};
