import { formatBandwidth } from "@bootstream/images";
import type { Handler } from "./types";

export const settingsUpdate: Handler<"settings:update"> = async (change, actor, region) => {
  const { entry, settings } = await region.db.write(async (m) => {
    const said: string[] = [];
    if (change.autoImport !== undefined) {
      await region.settings.setAutoImport(m, change.autoImport);
      said.push(`auto-import ${change.autoImport ? "on" : "off"}`);
    }
    if (change.bandwidthLimit !== undefined) {
      await region.settings.setBandwidthLimit(m, change.bandwidthLimit);
      said.push(`bandwidth ${formatBandwidth(change.bandwidthLimit)}`);
    }
    const settings = await region.settings.get(m);
    return { settings, entry: await region.audit.record(m, actor.name, "settings:update", said.join(", ")) };
  });
  // The importer's cap follows at once, mid-import too (region.ts listens for this event).
  region.bus.emit("settings", { settings, by: actor.name });
  region.audit.announce(entry);
  return { settings };
};
