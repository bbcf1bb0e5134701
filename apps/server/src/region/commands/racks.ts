import type { Handler } from "./types";

export const rackRemove: Handler<"rack:remove"> = async ({ name }, actor, region) => {
  const entry = await region.racks.remove(name, (m) =>
    region.audit.record(m, actor.name, "rack:remove", `rack "${name}"`),
  );
  region.audit.announce(entry);
  return {};
};
