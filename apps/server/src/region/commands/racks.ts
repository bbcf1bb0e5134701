import type { Handler } from "./types";

export const rackRemove: Handler<"rack:remove"> = async ({ name }, actor, region) => {
  const entry = await region.racks.remove(name, {
    by: actor.name,
    action: "rack:remove",
    detail: `rack "${name}"`,
  });
  region.audit.announce(entry);
  return {};
};
