import type { Handler } from "./types";

export const settingsUpdate: Handler<"settings:update"> = async ({ autoImport }, actor, region) => {
  const entry = await region.db.write(async (m) => {
    await region.settings.setAutoImport(m, autoImport);
    return region.audit.record(m, actor.name, "settings:update", `auto-import ${autoImport ? "on" : "off"}`);
  });
  const settings = { autoImport };
  region.bus.emit("settings", { settings, by: actor.name });
  region.audit.announce(entry);
  return { settings };
};
