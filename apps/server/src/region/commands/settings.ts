import { describeWindow, formatBandwidth } from "@bootstream/images";
import type { Handler } from "./types";

export const settingsUpdate: Handler<"settings:update"> = async (change, actor, region) => {
  const said: string[] = [];
  if (change.autoImport !== undefined) said.push(`auto-import ${change.autoImport ? "on" : "off"}`);
  if (change.bandwidthLimit !== undefined) said.push(`bandwidth ${formatBandwidth(change.bandwidthLimit)}`);
  if (change.importWindow !== undefined) said.push(`import window ${describeWindow(change.importWindow)}`);
  // The change and its audit row commit together.
  const { settings, entry } = await region.settings.update(change, {
    by: actor.name,
    action: "settings:update",
    detail: said.join(", "),
  });
  // The importer's cap and window follow at once, mid-import too (region.ts listens for this event).
  region.bus.emit("settings", { settings, by: actor.name });
  region.audit.announce(entry);
  return { settings };
};
