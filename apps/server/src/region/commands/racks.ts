import type { Handler } from "./types";

export const rackRemove: Handler<"rack:remove"> = async ({ name }, actor, region) => {
  await region.racks.remove(name);
  await region.audit.add(actor.name, "rack:remove", `rack "${name}"`);
  return {};
};
